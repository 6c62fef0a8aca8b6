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
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("query: %v", err)
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
		if scheme == "rediss" {
			// No ServerName: each connection checks the certificate
			// against the host it dials (a Cluster's nodes differ).
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if o.DB, err = database(path); err != nil {
			return nil, err
		}
		switch {
		case cluster && o.DB != 0:
			return nil, errors.New("a Redis Cluster has only database 0")
		case cluster:
			o.IsClusterMode = true
		case len(addrs) > 1:
			return nil, errors.New("several hosts: pass --redis-cluster for a Cluster, or use redis-sentinel://")
		}
	case "redis-sentinel":
		if cluster {
			return nil, errors.New("redis-sentinel:// is not a Cluster: drop --redis-cluster")
		}
		master, db, _ := strings.Cut(path, "/")
		if master == "" {
			return nil, errors.New("redis-sentinel://HOSTS/MASTER: the master's name is missing")
		}
		o.MasterName = master
		if o.DB, err = database(db); err != nil {
			return nil, err
		}
		o.SentinelPassword = q.Get("sentinel_password")
		if q.Get("tls") == "true" {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	default:
		return nil, fmt.Errorf("scheme %q: want redis, rediss or redis-sentinel", scheme)
	}
	return o, nil
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
// sentinel_password replaced by "xxxxx".
func Redact(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	rest, query, hasQuery := strings.Cut(rest, "?")
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if name, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
			rest = name + ":xxxxx@" + rest[at+1:]
		}
	}
	if !hasQuery {
		return scheme + "://" + rest
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		if k, _, _ := strings.Cut(p, "="); k == "sentinel_password" {
			params[i] = k + "=xxxxx"
		}
	}
	return scheme + "://" + rest + "?" + strings.Join(params, "&")
}
