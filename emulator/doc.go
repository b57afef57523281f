// Package emulator plays Huawei Cloud KooGallery toward a seller's
// production interface, so that a seller (in any language) can be tested
// offline: it sells products, places orders, calls the seller as
// KooGallery does (the SaaS V2 basic interfaces and the order
// notification), checks every answer as the Seller Center debugger does,
// retries failed calls on KooGallery's schedule and serves a mocked Open
// API (Query Order, usage push with what it billed, the license APIs and
// the license upload) for the seller's own calls back.
//
// # Families and keys
//
// A Family is a set of calls that share a URL, a signature scheme, a key
// type, answer checks and a retry policy. Seller Center binds one key per
// interface type (KeyType): the basic interfaces (Config.Key), the
// joint-operation sync interfaces (Config.KitKey), the license interfaces
// (Config.LicenseKey) and the general interfaces (Config.GeneralKey); an
// empty one falls back to Key. Each family signs its calls and checks the
// answers' Body-Sign with the key of its type. V2 uses the basic key and
// Config.Target; OrderNotify (orderNotify, license-openapi.md §F) the
// general key and Config.OrderNotifyTarget (Target when empty). The new
// usage push of the mocked Open API is checked with the basic key.
// LicenseCode (license-openapi.md §A) signs with the license key and goes
// to Config.LicenseTarget (the origin of Target + /license when empty);
// OnlineLicense (§C) goes to Config.OnlineLicenseTarget (LicenseTarget
// when empty) signed with the key of Config.OnlineLicenseKey (the license
// key unless KeyBasic).
// Emulator.Send sends a hand-made Call of any family (Call.Family, V2 by
// default).
//
// # Clocks
//
// The emulator keeps an emulated clock (Now): the wall-clock time at New,
// plus the wall time since multiplied by Config.TimeScale, plus every
// Advance. Each subscription runs on a clock of its own: the emulator's
// plus how far its own scenarios moved it (Subscription.ClockAhead).
// A purchase starts it at the emulator's; expire and release move their
// subscription's clock alone, to its expiry or to the end of its 15-day
// retention, so that expiring one subscription leaves every other where
// it was; Advance moves the emulator's clock and every subscription's
// with it. Everything of a subscription is on its clock: its orders'
// createTime and expiry, the date in its order IDs, its messages' and
// attempts' times, their retries and polls, its StartTime and
// ReleaseTime, and its license code's state in the mocked Open API. What
// belongs to no subscription (test license codes, Send) is on the
// emulator's. When a subscription's clock has passed what its status
// does not show yet, Subscription.Lapsed says so (LapsedExpired,
// LapsedRetentionEnded): what KooGallery would do next; its Status stays
// what the seller was last told.
//
// Retry and poll intervals are emulated time, so with TimeScale 36000
// KooGallery's hourly newInstance retries come every 0.1 s. The
// timestamp signed into each call, and the clock the mocked Open API
// checks signatures against, are the wall clock, which the seller can
// check.
//
// # Scenarios
//
// A scenario is a row of a table: where it applies (charging modes and
// subscription statuses) and its steps. A step names the interface it
// calls, may place an order (registered with the mocked Open API so Query
// Order answers it), builds the request body from the subscription and
// says how the subscription changes when the call succeeds. One runner
// plays any table; the SaaS V2 table has purchase, trial,
// trial-to-formal, renewal, unsubscribe-renewal, renewal-change, expire,
// unfreeze, release, unsubscribe, upgrade, arrears-freeze,
// arrears-unfreeze and query; the order-notification table has
// order-notify, which places a NEW order and sends orderNotify for it
// (see Emulator.Scenarios). Scenarios that start a purchase (purchase,
// trial, order-notify) are played with Purchase (PurchaseRequest.Scenario),
// the others with Play. A subscription whose order was notified is
// notified (StatusNotified); no other scenario plays on it.
//
// # License products
//
// A product's Protocol ProtocolLicense or ProtocolOnlineLicense makes it a
// license product (OFFI-EMU-LICENSE, OFFI-EMU-ONLINELICENSE). Buying a
// license-code product calls nothing: KooGallery issues a license code
// (Subscription.LicenseCode) to the mocked Open API, ALIVE and not yet
// activated, with the order's expiry and the quantity bought as its amount.
// renewal, unsubscribe-renewal, renewal-change, expire, unfreeze, release
// and unsubscribe then send refreshLicenseCode, updateLicenseCodeStatus
// and releaseLicenseCode, retried every 2 minutes 60 times after the first
// attempt, and move the code in the mocked Open API when they are sent.
// The online-license product plays the V2 instance scenarios through
// OnlineLicense, and request-license: getLicenseAsync, then a wait
// (Config.LicenseUploadWindow, emulated) for the seller's upload for its
// eventId. The mocked Open API serves activate and query (v1 and v2),
// software-usage-info and the upload on those codes and applications;
// test license codes (CreateTestLicenses) have no order and an editable
// validity. Licenses, LicenseActivations, LicenseQueries, LicenseUsage,
// LicenseUploads and LicenseEvents show what it holds and received.
//
// # Runs
//
// Purchase and Play return a Run. Run.OK says the run reached its end
// state and every step's call succeeded. A run that returns before its
// end state is Run.Pending (never OK), and Run.Waiting says what for:
// the polling of queryInstance after newInstance answered 000004 (with
// Config.NoRetry, Purchase does that polling before it returns, and the
// run is pending meanwhile), or the retries of a step whose first
// attempt failed. Outcome(run.ID) tells the run as it stands: ok once
// the polling finds the instance or a retry succeeds and the rest of the
// scenario has played, failed (Run.Err says why) when the polling gives
// up at the end of newInstance's retry window, the retries run out or
// the subscription is released. The last 1,000 runs are kept.
//
// A scenario stops at the first step whose first attempt fails (Run.OK is
// false, Run.Pending while the step is retried); the failed message is
// still retried in the background, and a later success, or a Redrive,
// applies the step's change and then plays the scenario's remaining steps
// in the background (logged as "scenario continued"). With Config.KeepGoing (and NoRetry), a step whose answer
// broke only rules on its form (Body-Sign, Content-Type, HTTP status,
// lengths, duplicates) but carries an acceptable resultCode and the
// fields the step needs is applied and the scenario plays on; Run.OK is
// still false and the message failed. The conformance suite uses it to
// see every rule a seller breaks.
//
// One scenario runs on a subscription at a time: Play refuses a
// subscription that is busy with another, or one of whose messages is in
// flight or waiting for a retry. A change is applied only if the
// subscription has not changed since its message was first sent; a late
// success after another change (a re-drive of an old message) is stale
// and changes nothing. A release cancels the subscription's pending
// retries.
//
// # Messages
//
// Every call is a Message, KooGallery's "production interface messages":
// the body, its attempts with their request, response, resultCode and the
// rules the answer broke, and a status (sending, success, retrying,
// failed). A recorded URL shows no password and no query value but the
// timestamp and nonce (RedactURL), a recorded body is cut to 16 KiB, and
// a message keeps its first 10 and last 40 attempts. The log keeps the
// last 10,000 messages, dropping finished ones (success or failed, no
// attempt in flight) first.
//
// The duplicates fault (Faults.Duplicates) and PurchaseRequest.Duplicates
// deliver a call several times at once; the answers must agree (rule
// idempotent: the same resultCode and, for newInstance, the same
// instanceId).
//
// After newInstance answers 000004 the emulator polls queryInstance every
// Config.PollInterval (emulated) until it answers 000000 with the
// instance and its appInfo (saas-v2.md §6.3; an answer without appInfo
// breaks a rule and polling goes on; an online-license instance needs
// none: its product has no front end), or until newInstance's retry window
// ends and the subscription fails. Polls that follow a 000004 are
// attempts of one message.
//
// # Clock limits
//
// Advance moves the clocks at most MaxAdvance at once; no clock, the
// emulator's or a subscription's, moves more than MaxTotalAdvance in all,
// Advances and its scenarios' own moves together.
//
// # Usage and billing
//
// The mocked Open API checks every usage push (the signature headers,
// APIG, a strict body with keys in natural order, the fields, at most 1000
// records, the 21-day rule) against the emulator's instances: an
// instance_id the seller never returned is MKT.9001, a begin_time before
// the instance's start (its order's createTime) or an end_time after its
// release MKT.9002, naming the record. The pushes run on the wall clock,
// so the start and release are taken to it when they happen
// (Subscription.WallStartTime, WallReleaseTime). The first record
// of each period is kept; a later one with the same metering_sn, or the
// same instance and period, is a duplicate, answered MKT.0000 and
// ignored. Billed tells, per instance, what was kept (exact sums in
// ten-thousandths) and how many duplicates were ignored, for the life of
// the emulator; UsageRecords is the log of the last 10,000 records.
// Faults.UsageFailRate fails that fraction of the pushes: answered
// MKT.0999, held until the seller gives up, or kept and then held (the
// retry must be de-duplicated). PurchaseRequest.OrderTime places a
// purchase in the past, so that its instance can be metered for the hours
// since.
//
// # OneAccess
//
// The emulator plays the identity center (OneAccess,
// saas-v1-joint-login.md Part C) of every tenant the Kit scenarios made,
// under OneAccessPath + tenantCode (OneAccessHandler, also in Handler):
// the OAuth 2.0 authorization-code flow with a login form, refresh, user
// info, logout, CAS 3.0 and the unified-login entry. With
// Config.PublicURL a tenant's domainName (tenantSync) is that base URL.
// Every user authSync ever sent signs in with Config.UserPassword,
// revoked ones included: refusing them is the seller's job. The first
// redirect_uri (and CAS service) a client uses is registered; later ones
// must equal it. Faults.OneAccessTokenLatency and OneAccessTokenFail slow
// down or break the token endpoint.
package emulator
