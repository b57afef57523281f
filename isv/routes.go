package isv

import (
	"github.com/koobridge/koobridge/internal/inbound"
	"github.com/koobridge/koobridge/internal/instance"
	"github.com/koobridge/koobridge/internal/kit"
	"github.com/koobridge/koobridge/internal/legacylicense"
	"github.com/koobridge/koobridge/internal/license"
	"github.com/koobridge/koobridge/internal/licensecode"
	"github.com/koobridge/koobridge/internal/onlinelicense"
	"github.com/koobridge/koobridge/internal/ordernotify"
	"github.com/koobridge/koobridge/internal/saasv1"
	"github.com/koobridge/koobridge/internal/saasv2"
	"github.com/koobridge/koobridge/internal/tenant"
)

// paths are the configured routes.
type paths struct {
	produce     string // the production path of the basic interfaces
	orderNotify string // where order notifications arrive
	license     string // where license products' calls arrive
}

// services are the domain services the families run on.
type services struct {
	instances     *instance.Service
	notifications *ordernotify.Service
	v1            *saasv1.Service
	tenants       *tenant.Service
	licenses      *license.Service
	online        *onlinelicense.Service
	legacy        *legacylicense.Service
}

// routes lists every family of KooGallery calls koobridge serves: one line
// per family, its route and key type in its package. Families on the same
// path are told apart by the activity they serve; the first one on a path
// takes the activities nobody serves (and answers 000002).
//
// Adding a family is a package under internal/ and a line here.
func routes(p paths, s services) []*inbound.Family {
	families := []*inbound.Family{
		saasv2.Family(s.instances, p.produce), // POST: the seven SaaS V2 basic interfaces, basic key
		s.v1.Family(p.produce),                // GET: the seven SaaS V1 basic interfaces, authToken, basic key
		s.notifications.Family(p.orderNotify), // POST: orderNotify, general key
	}
	// POST /produceAPI/<op> (authToken header) and /produceAPI/v2/<op>
	// (x-sign), at the root and under p.produce: the five Kit sync
	// interfaces, Kit key.
	families = append(families, kit.Families(s.tenants, p.produce)...)
	return append(families,
		licensecode.Family(s.licenses, p.license), // POST: the three license-code 2.0 calls, License key
		s.online.Family(p.license),                // POST: online license, the instance calls and getLicenseAsync, License key (or basic)
		s.legacy.Family(p.produce, p.license),     // GET: license 1.0, authToken, basic key, beside SaaS V1
	)
}
