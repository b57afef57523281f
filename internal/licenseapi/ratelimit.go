package licenseapi

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Rate limits are kept in memory, per replica: a replica protects itself
// and KooGallery's Open API from one runaway client; across n replicas a
// client may get up to n times the rate.

// maxBuckets bounds the memory of one limiter. Buckets of keys idle for a
// minute are full again and are dropped each minute; if a flood of
// distinct keys still fills the map, it starts over (everyone gets a full
// bucket once more), which bounds memory at the cost of one minute's
// accuracy.
const maxBuckets = 100_000

// limiter is a set of token buckets, one per key, each holding at most
// perMinute tokens and refilled at perMinute a minute.
type limiter struct {
	perMinute float64

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was counted
}

func newLimiter(perMinute int) *limiter {
	return &limiter{perMinute: float64(perMinute), buckets: map[string]*bucket{}}
}

// take takes a token of key's bucket at now. When there is none it
// reports false and how long until there is one.
func (l *limiter) take(key string, now time.Time) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.perMinute, at: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(l.perMinute, b.tokens+elapsed.Minutes()*l.perMinute)
	}
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.perMinute * float64(time.Minute))
}

// sweep drops the buckets a minute idle (full again: the same as
// absent), once a minute or when the map is at its bound.
func (l *limiter) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < time.Minute && len(l.buckets) < maxBuckets {
		return
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.at) >= time.Minute {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}

// clientAddress is the key of a request's address limit: the peer's IP
// address from RemoteAddr (koobridge has no trusted-proxy setting, so a
// forwarded-for header, which any client can write, is not believed;
// behind a proxy every client shares the proxy's bucket), and for IPv6
// its /64, which one host usually has whole.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
