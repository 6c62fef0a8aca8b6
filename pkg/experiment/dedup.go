package experiment

import (
	"hash/maphash"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// dedupKey identifies an evaluation: who, and which variant of which flag
// (what Amplitude's canonical string spells out), as seeded
// 64-bit hashes. Two different evaluations share a key with a probability
// of about 2^-64; an entry takes 24 bytes instead of the canonical string,
// which is kilobytes long for a hundred flags. The set hash is a sum, so
// the key needs no sorting: a duplicate evaluation is recognised in one
// pass over its results, without allocating.
type dedupKey struct {
	ids, set uint64
	n        int
}

// dedupCache remembers evaluations for 24 hours from their first sight:
// an LRU of bounded size, whose entries expire by the
// injected clock. It starts no goroutine; expired entries are replaced
// when seen again or evicted as least recently used.
type dedupCache struct {
	seed maphash.Seed
	ttl  int64 // ms

	mu  sync.Mutex
	lru *simplelru.LRU[dedupKey, int64] // key -> expiry, Unix ms
}

func newDedupCache(capacity int) (*dedupCache, error) {
	lru, err := simplelru.NewLRU[dedupKey, int64](capacity, nil)
	if err != nil {
		return nil, err
	}
	return &dedupCache{seed: maphash.MakeSeed(), ttl: dayMillis, lru: lru}, nil
}

// keyOf is the key of an evaluation.
func (c *dedupCache) keyOf(user *User, variants map[string]Variant) dedupKey {
	var h maphash.Hash
	h.SetSeed(c.seed)
	_, _ = h.WriteString(user.UserID)
	_ = h.WriteByte(0)
	_, _ = h.WriteString(user.DeviceID)
	k := dedupKey{ids: h.Sum64(), n: len(variants)}
	for flag, v := range variants {
		h.Reset()
		_, _ = h.WriteString(flag)
		_ = h.WriteByte(0)
		_, _ = h.WriteString(v.Key)
		k.set += h.Sum64()
	}
	return k
}

// admit reports whether k is new (or its entry expired) and, if so,
// remembers it until nowMs + 24h.
func (c *dedupCache) admit(k dedupKey, nowMs int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if expiry, ok := c.lru.Get(k); ok && nowMs < expiry {
		return false
	}
	c.lru.Add(k, nowMs+c.ttl)
	return true
}

// forget removes k: its events were not queued after all.
func (c *dedupCache) forget(k dedupKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(k)
}
