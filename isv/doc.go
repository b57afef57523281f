// Package isv is koobridge's embeddable server: the HTTP transport of the
// KooGallery SaaS V2 production interface.
//
// A Server verifies every call (V2 URL signature, 60 s timestamp window,
// nonces persisted in the store so a replay is caught after a restart and
// across replicas), decodes and validates the activity, hands it to the
// lifecycle service, writes the reply as KooGallery expects it (HTTP 200,
// JSON with non-ASCII text as \uXXXX escapes, a Body-Sign header) and
// records the call in the ledger with personal data and secrets masked.
//
// Mount Handler at the production path; it serves POST at whatever path it
// is mounted on. Run the job workers and the nonce sweeper with Run.
//
//	srv, err := isv.New(isv.Config{Keys: keys, Store: st, Orders: client, Provisioner: p, Sealer: sealer})
//	mux.Handle("/produce", srv.Handler())
//	go srv.Run(ctx)
//
// # Answers
//
// Every answer is HTTP 200 with a resultCode, except a method other than
// POST (HTTP 405, resultCode 000002):
//
//	000001  the signature, timestamp or nonce check failed; the message names the check
//	000002  the body is too large, unreadable, not JSON, names an unknown or unserved
//	        activity, or a field is missing, too long or not an allowed value
//	000005  an internal failure (the database is unreachable, a bug); details are logged
//
// and otherwise whatever the lifecycle service answers. A rejected call
// changes nothing: it creates no instance, operation or job, and never
// reaches the Open API or a provisioner. Its nonce is not recorded either,
// so a forged call cannot burn a legitimate nonce. Rejected calls are
// still recorded in the ledger (masked, at most 16 KiB of request text), so
// an operator can see why KooGallery's calls fail.
//
// The request id comes from X-Request-Id (at most 64 characters from
// [A-Za-z0-9._:-]) or is generated; it is echoed in the reply, kept in the
// ledger and carried by every log line of the call, including the lines the
// lifecycle service logs with the call's context.
//
// # Metrics
//
// When Config.Registerer is set, the server registers:
//
//	koobridge_calls_total{activity,code}             counter: answered calls by activity and result code
//	koobridge_call_duration_seconds{activity}        histogram: time from request to reply written (buckets up to 10 s)
//	koobridge_auth_failures_total{reason}            counter: calls answered 000001, by failed check
//	                                                 (missing, malformed_timestamp, malformed_nonce, stale_timestamp,
//	                                                 future_timestamp, signature, replayed_nonce)
//	koobridge_jobs_total{kind,outcome}               counter: background job attempts by kind and outcome (done, retry, dead)
//	koobridge_ledger_errors_total                    counter: calls whose ledger row could not be written
//
// The activity label is one of the V2 activity names or "unknown" (the
// body could not be decoded or named an activity not served here), so an
// attacker cannot grow the label set.
package isv
