package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/koobridge/koobridge/isv"
)

// usageOptions are serve's settings of pay-per-use metering
// (docs/metering.md).
type usageOptions struct {
	tokens        keySetFlags // --usage-token, --usage-token-file
	pushInterval  time.Duration
	settle        time.Duration
	dailyProducts []string
	dayZone       string
}

func (o *usageOptions) register(fs *pflag.FlagSet) {
	o.tokens.register(fs, "usage-token", "bearer token of the usage API for the vendor's product, POST "+isv.UsagePath+" (unset: the usage API answers 404)")
	fs.DurationVar(&o.pushInterval, "usage-push-interval", isv.DefaultUsagePushInterval, "how often closed billing periods are pushed to KooGallery")
	fs.DurationVar(&o.settle, "usage-settle", isv.DefaultUsageSettle, "how long after a billing period ends its usage may still arrive before it is pushed")
	fs.StringArrayVar(&o.dailyProducts, "usage-daily-products", nil, "product IDs billed per day (repeat the flag, or separate them with commas; a YAML list works too); the others are billed per hour")
	fs.StringVar(&o.dayZone, "usage-day-zone", "+08:00", "the UTC offset whose midnights bound daily billing periods: +HH:MM, -HH:MM or UTC (UNCONFIRMED which one KooGallery uses; China time by default)")
}

// resolve checks the settings and returns isv's view of them.
func (o *usageOptions) resolve() (isv.UsageConfig, error) {
	var c isv.UsageConfig
	tokens, err := o.tokens.values("usage-token")
	if err != nil {
		return c, err
	}
	for _, token := range tokens {
		if len(token) < isv.MinUsageTokenLen {
			return c, usageErrorf("--usage-token is too short: use at least %d characters (openssl rand -hex 32)", isv.MinUsageTokenLen)
		}
	}
	c.Tokens = tokens
	// Each replica reads the database once per interval: a second at least.
	if o.pushInterval < time.Second || o.settle < 0 {
		return c, usageErrorf("--usage-push-interval %v and --usage-settle %v: want an interval of at least 1s and a settle time not negative", o.pushInterval, o.settle)
	}
	c.PushInterval, c.Settle = o.pushInterval, o.settle
	if c.Settle == 0 {
		c.Settle = time.Nanosecond // zero means the default to isv
	}
	for _, v := range o.dailyProducts {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				return c, usageErrorf("--usage-daily-products %q: an empty product ID", v)
			}
			c.DailyProducts = append(c.DailyProducts, p)
		}
	}
	if c.DayZone, err = parseZone(o.dayZone); err != nil {
		return c, usageErrorf("--usage-day-zone %q: %v", o.dayZone, err)
	}
	return c, nil
}

// parseZone reads UTC or a fixed offset ±HH:MM.
func parseZone(s string) (*time.Location, error) {
	if s == "UTC" || s == "Z" {
		return time.UTC, nil
	}
	if len(s) != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':' {
		return nil, fmt.Errorf("want UTC or an offset like +08:00")
	}
	h, err1 := strconv.Atoi(s[1:3])
	m, err2 := strconv.Atoi(s[4:6])
	if err1 != nil || err2 != nil || h > 23 || m > 59 {
		return nil, fmt.Errorf("want UTC or an offset like +08:00")
	}
	off := h*3600 + m*60
	if s[0] == '-' {
		off = -off
	}
	return time.FixedZone("UTC"+s, off), nil
}
