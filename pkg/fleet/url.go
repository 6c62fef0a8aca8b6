package fleet

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ParseURL reads a Redis location into go-redis options:
//
//	redis://[[user]:password@]host[:port][/db]            one server
//	rediss://...                                          the same over TLS
//	redis-sentinel://[[user]:password@]host[:port][,host[:port]...]/master[/db][?sentinel_password=P&tls=true]
//
// With cluster, the redis:// or rediss:// host list (comma-separated) is a
// Cluster's seed nodes and a database other than 0 is refused. Errors never
// contain the password.
func ParseURL(raw string, cluster bool) (*redis.UniversalOptions, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, errors.New("want a redis://, rediss:// or redis-sentinel:// URL")
	}
	rest, query, _ := strings.Cut(rest, "?")
	q, err := parameters(query, scheme)
	if err != nil {
		return nil, err
	}
	var user *url.Userinfo
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if user, err = userinfo(rest[:at]); err != nil {
			return nil, err
		}
		rest = rest[at+1:]
	}
	hosts, path, _ := strings.Cut(rest, "/")
	addrs, err := addresses(hosts, scheme)
	if err != nil {
		return nil, err
	}
	o := &redis.UniversalOptions{Addrs: addrs}
	if user != nil {
		o.Username = user.Username()
		o.Password, _ = user.Password()
	}
	switch scheme {
	case "redis", "rediss":
		err = serverOptions(o, scheme == "rediss", path, cluster)
	case "redis-sentinel":
		err = sentinelOptions(o, path, q, cluster)
	default:
		err = fmt.Errorf("scheme %q: want redis, rediss or redis-sentinel", scheme)
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

// parameters reads the query. It refuses one the scheme does not take:
// "redis://h?tls=true" read as plain text would be a silent downgrade.
// An "@" in a name or value (sentinel_password's aside) is the sign of a
// "?" in the password: what precedes it is credentials, not to be quoted
// in the errors that parsing it as a host would give.
func parameters(query, scheme string) (url.Values, error) {
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("query: %v", err)
	}
	for k, vs := range q {
		if strings.Contains(k, "@") || k != "sentinel_password" && strings.Contains(strings.Join(vs, ""), "@") {
			return nil, errors.New(`a "?" in the user or password: write it %3F`)
		}
		if scheme == "redis-sentinel" && (k == "sentinel_password" || k == "tls") {
			continue
		}
		return nil, fmt.Errorf("parameter %q: not known (redis-sentinel:// takes sentinel_password and tls; rediss:// is TLS)", k)
	}
	return q, nil
}

// serverOptions sets what redis:// and rediss:// say of one server or a
// Cluster.
func serverOptions(o *redis.UniversalOptions, tlsOn bool, path string, cluster bool) error {
	if tlsOn {
		// No ServerName: each connection checks the certificate against
		// the host it dials (a Cluster's nodes differ).
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	var err error
	if o.DB, err = database(path); err != nil {
		return err
	}
	switch {
	case cluster && o.DB != 0:
		return errors.New("a Redis Cluster has only database 0")
	case cluster:
		o.IsClusterMode = true
	case len(o.Addrs) > 1:
		return errors.New("several hosts: pass --redis-cluster for a Cluster, or use redis-sentinel://")
	}
	return nil
}

// sentinelOptions sets what redis-sentinel:// says: the master's name and
// database, the sentinels' password and TLS.
func sentinelOptions(o *redis.UniversalOptions, path string, q url.Values, cluster bool) error {
	if cluster {
		return errors.New("redis-sentinel:// is not a Cluster: drop --redis-cluster")
	}
	master, db, _ := strings.Cut(path, "/")
	if master == "" {
		return errors.New("redis-sentinel://HOSTS/MASTER: the master's name is missing")
	}
	o.MasterName = master
	var err error
	if o.DB, err = database(db); err != nil {
		return err
	}
	o.SentinelPassword = q.Get("sentinel_password")
	switch q.Get("tls") {
	case "true":
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	case "", "false":
	default: // "tls=1" is no reason to talk plain text
		return fmt.Errorf("tls=%q: want true or false", q.Get("tls"))
	}
	return nil
}

// userinfo decodes "user:password" as a URL holds it; an error never
// quotes it.
func userinfo(s string) (*url.Userinfo, error) {
	name, pass, hasPass := strings.Cut(s, ":")
	u, err1 := url.PathUnescape(name)
	p, err2 := url.PathUnescape(pass)
	if err1 != nil || err2 != nil {
		return nil, errors.New("user or password: bad %-escape")
	}
	if hasPass {
		return url.UserPassword(u, p), nil
	}
	return url.User(u), nil
}

// addresses are the comma-separated hosts, each given the scheme's
// default port when it has none.
func addresses(hosts, scheme string) ([]string, error) {
	if hosts == "" {
		return nil, errors.New("no host")
	}
	port := "6379"
	if scheme == "redis-sentinel" {
		port = "26379"
	}
	var out []string
	for _, h := range strings.Split(hosts, ",") {
		host, p, err := net.SplitHostPort(h)
		if err != nil {
			host, p = strings.Trim(h, "[]"), port
		}
		if host == "" || strings.ContainsAny(host, " /@?#") {
			return nil, fmt.Errorf("host %q: not a host name or address", h)
		}
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("host %q: bad port", h)
		}
		out = append(out, net.JoinHostPort(host, p))
	}
	return out, nil
}

func database(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("database %q: want a number", s)
	}
	return n, nil
}

// Redact is a Redis URL as it may be shown: the password and a
// sentinel_password replaced by "xxxxx". It hides them in what is no URL
// too (no scheme, a "?" or "/" unescaped in the password), since errors
// echo such values: the password is whatever lies between the first ":"
// and the last "@", wherever a parser would end the host.
func Redact(raw string) string {
	prefix, rest := "", raw
	if scheme, r, ok := strings.Cut(raw, "://"); ok && !strings.ContainsAny(scheme, ":@/?") {
		prefix, rest = scheme+"://", r
	}
	// The sentinel password's value may hold an "@": it is no userinfo's.
	tail := ""
	if i := strings.Index(rest, "sentinel_password="); i > 0 && strings.ContainsAny(rest[i-1:i], "?&") {
		rest, tail = rest[:i], redactParam(rest[i:], "sentinel_password=")
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if name, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
			rest = name + ":xxxxx" + rest[at:]
		}
	}
	return prefix + rest + tail
}

// redactParam replaces the value of every param= in s, up to the next
// "&", by "xxxxx".
func redactParam(s, param string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, param)
		if i < 0 {
			break
		}
		b.WriteString(s[:i+len(param)] + "xxxxx")
		s = s[i+len(param):]
		if j := strings.IndexByte(s, '&'); j >= 0 {
			s = s[j:]
		} else {
			s = ""
		}
	}
	return b.String() + s
}
