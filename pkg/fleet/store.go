package fleet

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/flagkit/experiment/pkg/cohort"
)

// Leases are compare-and-set on the instance token: a relay renews or
// releases only a lease it holds, never one another relay took after
// its own lapsed.
var (
	renewScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)
	// acquireScript is SET NX PX that, when the lease is held, says for
	// how long still: a follower tries again just after it lapses.
	acquireScript = redis.NewScript(`if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return -3
end
return redis.call('PTTL', KEYS[1])`)
	releaseScript = redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
)

// acquire takes the lease key for ttl if nobody holds it.
func (f *Fleet) acquire(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ok, _, err := f.tryAcquire(ctx, key, ttl)
	return ok, err
}

// tryAcquire is acquire that also says, when the lease is held, how long
// it has left (-1: unknown).
func (f *Fleet) tryAcquire(ctx context.Context, key string, ttl time.Duration) (bool, time.Duration, error) {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	n, err := acquireScript.Run(ctx, f.rdb, []string{key}, f.instance, ttl.Milliseconds()).Int64()
	if err != nil {
		return false, -1, f.note(err)
	}
	f.note(nil)
	if n == -3 {
		return true, 0, nil
	}
	if n < 0 {
		return false, -1, nil
	}
	return false, time.Duration(n) * time.Millisecond, nil
}

// renew extends the lease key if this instance holds it; false: it does
// not (it lapsed, and maybe another relay took it).
func (f *Fleet) renew(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	n, err := renewScript.Run(ctx, f.rdb, []string{key}, f.instance, ttl.Milliseconds()).Int()
	return n == 1, f.note(err)
}

// release gives the lease key up if this instance holds it.
func (f *Fleet) release(ctx context.Context, key string) error {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	return f.note(releaseScript.Run(ctx, f.rdb, []string{key}, f.instance).Err())
}

// Meta describes the flags body a deployment's writer stored.
type Meta struct {
	ETag      string // Hash of the body: 32 hex digits, no quotes
	FetchedAt time.Time
	Flags     int
	Cohorts   []string
}

// ETag is the ETag of a flags body, as Meta holds it.
func ETag(body []byte) string { return hashBytes(body) }

// putFlagsScript stores a deployment's body and meta only while the
// lease (KEYS[1]) holds this instance's token: the check and the writes
// are one atomic step, so a writer whose lease lapsed while its command
// was delayed never overwrites the next writer's flags.
var putFlagsScript = redis.NewScript(`if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], 'etag', ARGV[3], 'fetched_at', ARGV[4], 'flags', ARGV[5], 'cohorts', ARGV[6])
return 1`)

// errNotWriter: the flags were not stored, the lease being another's.
var errNotWriter = errors.New("the deployment's lease is not this relay's")

// putFlags stores a deployment's body and meta as its writer, then
// announces the change. On one Redis (or Sentinel's master) the lease
// check and the writes are one script (putFlagsScript). In a Cluster the
// lease and the flags live in different slots (the key model of
// docs/serve.md), so a script cannot see both: there the body is stored,
// then its meta (a reader that sees the new meta first checks the hash
// and retries later), fenced only by the caller's deadline at the lease's
// end.
func (f *Fleet) putFlags(ctx context.Context, dep string, body []byte, m Meta) error {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	meta := []any{m.ETag, m.FetchedAt.UnixMilli(), m.Flags, strings.Join(m.Cohorts, ",")}
	if _, cluster := f.rdb.(*redis.ClusterClient); !cluster {
		n, err := putFlagsScript.Run(ctx, f.rdb, []string{f.depLease(dep), f.flagsKey(dep), f.metaKey(dep)},
			append([]any{f.instance, body}, meta...)...).Int()
		if err != nil {
			return f.note(err)
		}
		if n == 0 {
			return errNotWriter
		}
	} else {
		if err := f.rdb.Set(ctx, f.flagsKey(dep), body, 0).Err(); err != nil {
			return f.note(err)
		}
		err := f.rdb.HSet(ctx, f.metaKey(dep), "etag", meta[0], "fetched_at", meta[1], "flags", meta[2], "cohorts", meta[3]).Err()
		if err != nil {
			return f.note(err)
		}
	}
	return f.publish(ctx, "flags "+dep+" "+m.ETag)
}

// storedETag is the ETag of the flags Redis holds for a deployment: its
// meta's, or "" when the meta or the body is missing.
func (f *Fleet) storedETag(ctx context.Context, dep string) (string, error) {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	var etag *redis.StringCmd
	var body *redis.IntCmd
	_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		etag, body = p.HGet(ctx, f.metaKey(dep), "etag"), p.Exists(ctx, f.flagsKey(dep))
		return nil
	})
	if err = f.note(err); err != nil || body.Val() == 0 {
		return "", err
	}
	return etag.Val(), nil
}

// meta reads a deployment's meta; the zero Meta when none is stored.
func (f *Fleet) meta(ctx context.Context, dep string) (Meta, error) {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	h, err := f.rdb.HGetAll(ctx, f.metaKey(dep)).Result()
	if err != nil {
		return Meta{}, f.note(err)
	}
	f.note(nil)
	m := Meta{ETag: h["etag"]}
	if ms, err := strconv.ParseInt(h["fetched_at"], 10, 64); err == nil {
		m.FetchedAt = time.UnixMilli(ms)
	}
	m.Flags, _ = strconv.Atoi(h["flags"])
	if h["cohorts"] != "" {
		m.Cohorts = strings.Split(h["cohorts"], ",")
	}
	return m, nil
}

// flags reads a deployment's body; nil when none is stored.
func (f *Fleet) flags(ctx context.Context, dep string) ([]byte, error) {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	b, err := f.rdb.Get(ctx, f.flagsKey(dep)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, f.note(nil)
	}
	return b, f.note(err)
}

func (f *Fleet) publish(ctx context.Context, msg string) error {
	if err := f.rdb.Publish(ctx, f.channel(), msg).Err(); err != nil {
		return f.note(err)
	}
	f.metrics.notices.WithLabelValues("sent").Inc()
	return f.note(nil)
}

// CohortDesc describes the version of a cohort stored for the fleet.
type CohortDesc struct {
	Version   int64 // the cohort's lastModified
	GroupType string
	Size      int
	FetchedAt time.Time // when its holder last checked it with Amplitude
	Error     string    // the holder's last download failure, if any
}

// oldVersionTTL is how long a superseded cohort body stays readable, for
// a relay that read the description just before the change.
const oldVersionTTL = 10 * time.Minute

// putCohort stores c as its cohort's current version (description and
// body share a Cluster slot by their hash tag), kept for keep, lets the
// previous version expire, and announces the change.
func (f *Fleet) putCohort(ctx context.Context, c *cohort.Cohort, at time.Time, keep time.Duration) error {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	old, err := f.rdb.HGet(ctx, f.descKey(c.ID), "version").Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return f.note(err)
	}
	hadOld := err == nil
	_, err = f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, f.blobKey(c.ID, c.LastModified), c.AppendJSON(nil), keep)
		p.HSet(ctx, f.descKey(c.ID), "version", c.LastModified, "group_type", c.GroupType,
			"size", c.Size, "fetched_at", at.UnixMilli(), "error", "")
		p.PExpire(ctx, f.descKey(c.ID), keep)
		if hadOld && old != c.LastModified {
			p.PExpire(ctx, f.blobKey(c.ID, old), oldVersionTTL)
		}
		return nil
	})
	if err != nil {
		return f.note(err)
	}
	return f.publish(ctx, "cohort "+c.ID+" "+strconv.FormatInt(c.LastModified, 10))
}

// touchCohort records a check of the cohort with Amplitude: unchanged
// (failure "") or failed, so that other relays neither download it nor
// hide the failure. The description and the version held (nil: none)
// are kept for keep more: a cohort nobody checks any more, because no
// flag targets it, leaves Redis. A held version found unchanged whose
// body Redis lost (eviction, failover) is stored again: the description
// alone would keep other relays from ever loading it.
func (f *Fleet) touchCohort(ctx context.Context, id string, held *cohort.Cohort, at time.Time, failure string,
	keep time.Duration) error {
	tctx, cancel := f.ctx(ctx)
	defer cancel()
	var kept *redis.BoolCmd
	_, err := f.rdb.TxPipelined(tctx, func(p redis.Pipeliner) error {
		p.HSet(tctx, f.descKey(id), "fetched_at", at.UnixMilli(), "error", failure)
		p.PExpire(tctx, f.descKey(id), keep)
		if held != nil {
			kept = p.PExpire(tctx, f.blobKey(id, held.LastModified), keep)
		}
		return nil
	})
	if err = f.note(err); err != nil {
		return err
	}
	if kept != nil && !kept.Val() && failure == "" {
		return f.putCohort(ctx, held, at, keep)
	}
	return nil
}

// cohortDesc reads a cohort's description; ok false when none is stored.
func (f *Fleet) cohortDesc(ctx context.Context, id string) (CohortDesc, bool, error) {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	h, err := f.rdb.HGetAll(ctx, f.descKey(id)).Result()
	if err != nil {
		return CohortDesc{}, false, f.note(err)
	}
	f.note(nil)
	v, verr := strconv.ParseInt(h["version"], 10, 64)
	d := CohortDesc{Version: v, GroupType: h["group_type"], Error: h["error"]}
	d.Size, _ = strconv.Atoi(h["size"])
	if ms, err := strconv.ParseInt(h["fetched_at"], 10, 64); err == nil {
		d.FetchedAt = time.UnixMilli(ms)
	}
	return d, verr == nil, nil
}

// cohortBlob reads one version of a cohort.
func (f *Fleet) cohortBlob(ctx context.Context, id string, version int64) (*cohort.Cohort, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*f.timeout) // a body may be large
	defer cancel()
	b, err := f.rdb.Get(ctx, f.blobKey(id, version)).Bytes()
	if errors.Is(err, redis.Nil) { // an answer to note, but no cohort
		f.note(nil)
		return nil, fmt.Errorf("cohort %s version %d in Redis %w", id, version, errMissing)
	}
	if err != nil {
		return nil, f.note(err)
	}
	f.note(nil)
	c, err := cohort.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("cohort %s version %d in Redis %w: %w", id, version, errUnreadable, err)
	}
	return c, nil
}

// errUnreadable marks a value Redis returned that does not decode: no
// Redis failure, but something the relay must say (it keeps what it has).
var errUnreadable = errors.New("is unreadable")

// errMissing marks a version a cohort's description names whose body
// Redis no longer has (evicted, or lost in a failover): the relay keeps
// what it has until the cohort's next check stores the body again.
var errMissing = errors.New("is missing")

// seen records the hash of an event identity for 24 hours and reports
// whether some relay of the fleet recorded it before (then the event is
// not sent again). The identity itself never reaches Redis: it may hold
// user ids.
func (f *Fleet) seen(ctx context.Context, h string) (bool, error) {
	ctx, cancel := f.ctx(ctx)
	defer cancel()
	first, err := f.rdb.SetNX(ctx, f.seenKey(h), "1", SeenTTL).Result()
	if err != nil {
		return false, f.note(err)
	}
	return !first, f.note(nil)
}
