// Package isv is koobridge's embeddable server: the KooGallery production
// interface for a vendor's own Go service, configured with public types
// only (this package, store, provision and protocol/sign).
//
// A Server serves every family of KooGallery calls that koobridge knows
// (the SaaS V2 and V1 basic interfaces, the joint-operation Kit V1 and V2,
// order notification, license codes 2.0, online license and license 1.0)
// through one pipeline: it verifies each call with the key of the call's interface
// type (URL signature, 60 s timestamp window, nonces persisted in the
// database so a replay is caught after a restart and across replicas),
// refuses ambiguous input (repeated query parameters, duplicate JSON keys,
// wrong JSON types, invalid UTF-8, NUL) before any write, decodes and
// validates the activity, runs it idempotently, writes the reply as
// KooGallery expects it (HTTP 200, JSON with non-ASCII text as \uXXXX
// escapes, a Body-Sign header made with the same key type) and records
// the call in the ledger with personal data and secrets masked.
//
// The vendor's product is reached through a provision.Provisioner: a Go
// implementation, or the webhook and exec adapters of package provision.
//
//	db, err := store.Open(ctx, "sqlite:koobridge.db")
//	srv, err := isv.New(isv.Config{
//		Keys:        isv.Keys{Basic: []string{key}},
//		DB:          db,
//		DataKey:     dataKey, // 32 bytes
//		OpenAPI:     isv.OpenAPI{AK: ak, SK: sk},
//		Provisioner: myProduct{},
//	})
//	for _, p := range srv.Paths() {
//		mux.Handle(p, srv.Handler())
//	}
//	mux.Handle(isv.LicensePathPrefix, srv.LicenseHandler()) // license products only
//	mux.Handle(isv.UsagePath, srv.UsageHandler())           // pay-per-use products only
//	ran := make(chan error, 1)
//	go func() { ran <- srv.Run(ctx) }()
//	// … serve until ctx ends, stop the HTTP server, then:
//	<-ran // the workers have stopped and the ledger rows are written
//	db.Close()
//
// LicenseHandler is the license service for the vendor's software in the
// field (activate, check, the token keys): mount it where that software
// can reach it (docs/license.md). UsageHandler is the usage API of the
// vendor's product, and ReportUsage the same from Go: usage is stored,
// summed per instance and billing period, and pushed to KooGallery once
// per period (docs/metering.md; Config.Usage).
//
// # Answers
//
// Every answer is HTTP 200 with a resultCode, except a path the handler
// does not serve (HTTP 404, resultCode 000002; mount the handler at "/"
// to have it answer every path, as koobridge serve does) and a method the
// path does not serve (HTTP 405, resultCode 000002, with an Allow header):
//
//	000001  the signature, timestamp or nonce check failed; the message names the check
//	000002  the body is too large, unreadable, not one JSON object, ambiguous (a query
//	        parameter twice, a duplicate key, invalid UTF-8, NUL), names an unknown or
//	        unserved activity, or a field is missing, of the wrong type, too long or
//	        not an allowed value; also a repeat of an idempotent call whose key matches
//	        an earlier call but whose meaningful fields do not
//	000005  an internal failure (the database is unreachable, a bug); details are logged
//
// and otherwise whatever the family answers (docs/lifecycle.md). A refused
// call changes no state: it creates no instance, operation, notification or
// job, and never reaches the Open API or a provisioner. A call refused for
// its authentication records nothing, not even its nonce, so a forged call
// cannot burn a legitimate nonce; a call whose signature held and whose
// content is then refused has used its nonce. Refused calls are still
// recorded in the ledger (masked, at most 16 KiB of request text), so an
// operator can see why KooGallery's calls fail. The reply to every call,
// refusals included, carries a Body-Sign made with the key type of the
// family its activity names (the basic key for a path no family serves).
//
// The request id comes from X-Request-Id (at most 64 characters from
// [A-Za-z0-9._:-]) or is generated; it is echoed in the reply, kept in the
// ledger and carried by every log line of the call, including the lines the
// services log with the call's context.
//
// # Metrics
//
// When Config.Registerer is set, the server registers:
//
//	koobridge_calls_total{family,activity,code}      counter: answered calls by family, activity and result code
//	koobridge_call_duration_seconds{family,activity} histogram: time from request to reply written (buckets up to 10 s)
//	koobridge_auth_failures_total{family,reason}     counter: calls answered 000001, by family and failed check
//	                                                 (missing, repeated, malformed_timestamp, malformed_nonce,
//	                                                 stale_timestamp, future_timestamp, signature, replayed_nonce,
//	                                                 malformed_params)
//	koobridge_jobs_total{kind,outcome}               counter: background job attempts by kind and outcome (done, retry, dead)
//	koobridge_ledger_errors_total                    counter: calls whose ledger row could not be written
//	koobridge_ledger_swept_total{kind}               counter: calls the retention sweep deleted, by kind (answered, rejected)
//	koobridge_usage_records_total{status}            counter: usage records reported, by answer (accepted, duplicate, rejected)
//	koobridge_usage_periods_pushed_total             counter: billing periods sealed into a usage push
//	koobridge_usage_periods_total{state}             counter: billing periods KooGallery answered for good (accepted, rejected, dead)
//	koobridge_usage_push_attempts_total{outcome}     counter: usage push attempts (accepted, refused, failed)
//	koobridge_usage_oldest_unpushed_seconds          gauge: how long ago the oldest period not yet answered ended
//
// The family label is one of the families' names ("v2", "v1", "order",
// "kit-v1", "kit-v2", "license", "online-license", "license-v1") or
// "unknown" (the path served no family); the activity label one of the
// activities the family serves or "unknown", so a caller cannot grow the
// label set.
package isv
