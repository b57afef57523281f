// Command preload fills a fresh koobridge SQLite database with what a
// server that has run for a while holds, before koobridge serve starts on
// it, for bench/run's preloaded target: instances as newInstance leaves
// them (the instance, its operation record, its provision job) and a
// ledger of calls of realistic sizes.
//
// It opens the database with the store package, so the schema is the one
// serve migrates to (with -migrate=false, the one the file has), then
// fills it with SQL alone: each table by INSERT … SELECT over a recursive
// counter, half a million rows per transaction, with the rollback journal
// and syncing off, and the indexes whose keys arrive in random order
// dropped and built again at the end (see deferred). The database is left
// in WAL mode with the schema it had; a failed load leaves a database to
// throw away.
//
// Instance n (0 ≤ n < -instances) has the id, order id and status of
// package fixture for -seed, so bench/loadgen addresses preloaded
// instances from the seed and the count. Active, frozen and released
// instances have app info whose password is sealed with -data-key (one
// sealed value for all rows: the seal has no per-row context), so
// queryInstance answers 000000 for them.
//
//	go run ./bench/preload -db sqlite:/tmp/b.db -instances 1000000 -calls 10000000 -data-key "$KEY"
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/koobridge/koobridge/bench/internal/fixture"
	"github.com/koobridge/koobridge/internal/seal"
	"github.com/koobridge/koobridge/internal/store/sqlite"
)

// chunk is the number of rows of one INSERT … SELECT, one transaction.
const chunk = 500_000

// password is every preloaded instance's app password, before sealing.
const password = "Bench-Pass-2026!"

// deferred are the indexes the loader drops before filling their tables
// and builds again after: those whose keys arrive in random order (an
// instance id), which would cost a B-tree descent to a random page per
// row. The others take their keys in order (times, ids, a few distinct
// values, each followed by the rowid) and are cheaper kept: building one
// again reads the whole table, gigabytes for the ledger.
var deferred = []string{"calls_instance_id", "jobs_unique_key"}

type options struct {
	db        string
	instances int
	calls     int
	dataKey   string
	seed      uint
	migrate   bool
}

func main() {
	var o options
	flag.StringVar(&o.db, "db", "", "the SQLite database to fill, sqlite:PATH or PATH; it must not hold instances or calls yet")
	flag.IntVar(&o.instances, "instances", 1_000_000, "instances to store, each with its operation record and provision job")
	flag.IntVar(&o.calls, "calls", 1_000_000, "ledger rows (calls) to store")
	flag.StringVar(&o.dataKey, "data-key", "", "the data key serve will run with (base64 of 32 bytes), to seal the app passwords")
	flag.UintVar(&o.seed, "seed", 1, "names the preloaded rows (package fixture); bench/loadgen needs the same")
	flag.BoolVar(&o.migrate, "migrate", true, "create and migrate the schema with this tree's store package first; false fills the schema the file has (bench/run: the one the koobridge binary it measures created)")
	flag.Parse()
	if o.db == "" || o.dataKey == "" || o.instances < 1 || o.calls < 0 || o.instances >= 1<<31 || o.seed > 1<<32-1 {
		fmt.Fprintln(os.Stderr, "preload: -db and -data-key are required; -instances must be in [1, 2^31), -calls not negative, -seed 32 bits")
		os.Exit(2)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "preload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	start := time.Now()
	key, err := seal.ParseKey(o.dataKey)
	if err != nil {
		return fmt.Errorf("-data-key: %w", err)
	}
	sealer, err := seal.NewSealer(key)
	if err != nil {
		return fmt.Errorf("-data-key: %w", err)
	}
	sealed, err := sealer.Seal(password)
	if err != nil {
		return fmt.Errorf("seal the password: %w", err)
	}
	path, err := filePath(o.db)
	if err != nil {
		return err
	}
	// The store creates the file and migrates it; the load then goes
	// around it, on one connection of its own.
	if o.migrate {
		st, err := sqlite.Open(ctx, o.db)
		if err != nil {
			return err
		}
		if err := st.Close(); err != nil {
			return fmt.Errorf("close store: %w", err)
		}
	} else if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("-migrate=false: %w", err)
	}
	db, err := sql.Open("sqlite", path+"?_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)"+
		"&_pragma=locking_mode(EXCLUSIVE)&_pragma=temp_store(MEMORY)&_pragma=cache_size(-262144)")
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	l := &loader{db: db, seed: uint32(o.seed), n: o.instances, now: time.Now().UnixMilli()}
	if err := l.checkFresh(ctx); err != nil {
		return err
	}
	indexes, err := l.dropIndexes(ctx)
	if err != nil {
		return err
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"instances", func() error { return l.fill(ctx, "instances", o.instances, l.instancesSQL(), sealed) }},
		{"operations", func() error { return l.fill(ctx, "operations", o.instances, l.operationsSQL()) }},
		{"jobs", func() error { return l.fill(ctx, "jobs", o.instances, l.jobsSQL()) }},
		{"calls", func() error { return l.fill(ctx, "calls", o.calls, l.callsSQL(o.calls)) }},
		{"indexes", func() error { return l.createIndexes(ctx, indexes) }},
		{"wal", func() error { return l.exec(ctx, "switch back to WAL", `PRAGMA journal_mode=WAL`) }},
	}
	var phases []string
	for _, s := range steps {
		t := time.Now()
		if err := s.fn(); err != nil {
			return err
		}
		phases = append(phases, fmt.Sprintf("%s %.1f s", s.name, time.Since(t).Seconds()))
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	size := int64(0)
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	}
	fmt.Printf("preloaded %d instances (each with its operation and provision job) and %d calls, seed %d, in %.1f s (%s); %.2f GB\n",
		o.instances, o.calls, o.seed, time.Since(start).Seconds(), strings.Join(phases, ", "), float64(size)/1e9)
	return nil
}

// filePath is the file of a database setting: sqlite:PATH, sqlite://PATH
// or PATH, without driver parameters.
func filePath(dsn string) (string, error) {
	s := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite://"), "sqlite:")
	s, _, _ = strings.Cut(strings.TrimPrefix(s, "file:"), "?")
	if s == "" || strings.Contains(dsn, "postgres") {
		return "", fmt.Errorf("-db %q: want sqlite:PATH", dsn)
	}
	return s, nil
}

type loader struct {
	db   *sql.DB
	seed uint32
	n    int   // instances
	now  int64 // Unix milliseconds
}

func (l *loader) exec(ctx context.Context, what, query string, args ...any) error {
	if _, err := l.db.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// checkFresh refuses a database that already holds instances or calls:
// the fixture's ids would collide with them or be mixed with others.
func (l *loader) checkFresh(ctx context.Context) error {
	for _, t := range []string{"instances", "calls"} {
		var n int
		if err := l.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM `+t+` LIMIT 1)`).Scan(&n); err != nil {
			return fmt.Errorf("count %s: %w", t, err)
		}
		if n > 0 {
			return fmt.Errorf("the database already has %s: preload fills a fresh one", t)
		}
	}
	return nil
}

// dropIndexes drops the deferred indexes and returns their definitions.
func (l *loader) dropIndexes(ctx context.Context) ([]string, error) {
	q := `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND name IN ('` +
		strings.Join(deferred, "', '") + `') ORDER BY name`
	rows, err := l.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	var names, defs []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list indexes: %w", err)
		}
		names, defs = append(names, name), append(defs, def)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	for _, name := range names {
		if err := l.exec(ctx, "drop index "+name, `DROP INDEX "`+name+`"`); err != nil {
			return nil, err
		}
	}
	return defs, nil
}

func (l *loader) createIndexes(ctx context.Context, defs []string) error {
	for _, def := range defs {
		if err := l.exec(ctx, "create index", def); err != nil {
			return err
		}
	}
	return nil
}

// fill runs insert (an INSERT … SELECT over the counter c(n) from ?1 to
// ?2, exclusive; args from ?3 on) for rows 0 to total, chunk rows per
// transaction.
func (l *loader) fill(ctx context.Context, table string, total int, insert string, args ...any) error {
	for from := 0; from < total; from += chunk {
		to := min(from+chunk, total)
		if err := l.exec(ctx, "insert "+table, insert, append([]any{from, to}, args...)...); err != nil {
			return fmt.Errorf("rows %d to %d: %w", from, to, err)
		}
	}
	return nil
}

// counter is the recursive CTE c(n) of the rows ?1 ≤ n < ?2.
const counter = `WITH RECURSIVE c(n) AS (SELECT ?1 UNION ALL SELECT n + 1 FROM c WHERE n + 1 < ?2) `

const (
	day  = 24 * 60 * 60 * 1000 // milliseconds
	year = 365 * day
)

// createdAt is when instance n was created: spread over the last year,
// in the order of n.
func (l *loader) createdAt(n string) string {
	return fmt.Sprintf("(%d + (%s) * %d / %d)", l.now-year, n, year, l.n)
}

// instanceRows is the counter and the table r of the instances' facts the
// inserts share: n, id, ord (order id), st (status), created, expire.
// MATERIALIZED computes each once per row; inlined, SQLite would compute
// them again wherever they are used.
func (l *loader) instanceRows() string {
	return counter + `, r AS MATERIALIZED (SELECT *, ` + fmt.Sprint(l.now) + ` + (1 + n % 365) * ` + fmt.Sprint(day) + ` AS expire
		FROM (SELECT n, ` + fixture.InstanceIDSQL(l.seed, "n") + ` AS id, ` + fixture.OrderIDSQL(l.seed, "n") + ` AS ord, ` +
		fixture.StatusSQL("n") + ` AS st, ` + l.createdAt("n") + ` AS created FROM c)) `
}

// instancesSQL inserts the instances: a yearly purchase expiring in the
// coming year; the order as Query Order gave it; app info as the demo
// provisioner writes it, the password sealed (?3), none for a failed
// instance.
func (l *loader) instancesSQL() string {
	return l.instanceRows() + `INSERT INTO instances (id, order_id, order_line_id, business_id, test, order_state, product_id,
		sku_code, charging_mode, period_type, period_number, linear_value, customer_id, customer_name, expire_time,
		order_json, status, frozen_by, app_front_end_url, app_admin_url, app_user_name, app_password_sealed, app_memo,
		usage_value, usage_time, last_error, fail_code, created_at, updated_at, released_at, version)
	SELECT id, ord, ord || '-000001', 'biz-' || ord, 0, 'fetched', 'bench-product', 'bench-sku-' || (n % 3),
		'PERIOD', 'year', 1, '10', printf('cust-%07d', n / 3), printf('Customer %d', n / 3), expire,
		printf('{"orderId":"%s","orderType":"NEW","createTime":"%s","orderLine":[{"orderLineId":"%s-000001","chargingMode":"PERIOD","expireTime":"%s","periodType":"year","periodNumber":1,"productInfo":[{"productId":"bench-product","skuCode":"bench-sku-%d","linearValue":10,"productName":"bench"}]}],"buyerInfo":{"customerId":"cust-%07d","customerName":"Customer %d"}}',
			ord, strftime('%Y%m%d%H%M%S', created / 1000, 'unixepoch'), ord, strftime('%Y%m%d%H%M%S', expire / 1000, 'unixepoch'), n % 3, n / 3, n / 3),
		st, CASE st WHEN 'frozen' THEN 'status' ELSE '' END,
		CASE st WHEN 'failed' THEN '' ELSE 'https://demo.koobridge.invalid/t/' || id END,
		CASE st WHEN 'failed' THEN '' ELSE 'https://demo.koobridge.invalid/admin/' || id END,
		CASE st WHEN 'failed' THEN '' ELSE 'admin-' || substr(id, 1, 8) END,
		CASE st WHEN 'failed' THEN '' ELSE ?3 END,
		CASE st WHEN 'failed' THEN '' ELSE 'Demo instance 演示实例' END,
		'', 0, CASE st WHEN 'failed' THEN 'provisioner: demo: out of capacity' ELSE '' END, '',
		created, created + 5 + n % 7, CASE st WHEN 'released' THEN created + 30 * ` + fmt.Sprint(day) + ` ELSE 0 END,
		CASE st WHEN 'active' THEN 2 ELSE 3 END
	FROM r`
}

func (l *loader) operationsSQL() string {
	return l.instanceRows() + `INSERT INTO operations (key, activity, instance_id, state, result_code, response, created_at, updated_at, fingerprint)
	SELECT 'newInstance:' || ord || ':' || ord || '-000001', 'newInstance', id, 'done', code,
		CAST(printf('{"resultCode":"%s","resultMsg":"%s","instanceId":"%s"}', code,
			CASE code WHEN '000000' THEN 'success' ELSE 'provisioning in progress' END, id) AS BLOB),
		created, created + 5 + n % 7, printf('%08x%08x%016x', (n * 40503) % 4294967296, (n * 2654435761) % 4294967296, n)
	FROM (SELECT *, CASE st WHEN 'failed' THEN '000004' ELSE '000000' END AS code FROM r)`
}

func (l *loader) jobsSQL() string {
	return l.instanceRows() + `INSERT INTO jobs (kind, unique_key, payload, state, attempts, max_attempts, run_at, locked_by,
		locked_until, last_error, created_at, updated_at)
	SELECT 'provision', 'provision:' || id, CAST('{"instanceId":"' || id || '"}' AS BLOB),
		CASE st WHEN 'failed' THEN 'dead' ELSE 'done' END, CASE st WHEN 'failed' THEN 25 ELSE 1 END, 25,
		created, '', 0, CASE st WHEN 'failed' THEN 'provisioner: demo: out of capacity' ELSE '' END,
		created, created + 5 + n % 7
	FROM r`
}

// callsSQL is the ledger: total calls over the last 90 days, in the order
// of their ids. Of a hundred, 10 are a newInstance, 70 a queryInstance of
// one instance, 5 a queryInstance of five, 5 a refreshInstance, 5 an
// updateInstanceStatus, 2 a queryInstance of an unknown id (000003) and 3
// rejected (a bad signature, 000001). Requests and responses are the JSON
// a real call stores, masked as the ledger masks it.
func (l *loader) callsSQL(total int) string {
	const span = 90 * day
	id := fixture.InstanceIDSQL(l.seed, "i")
	info := `'{"appInfo":{"adminUrl":"https://demo.koobridge.invalid/admin/' || %[1]s || '","frontEndUrl":"https://demo.koobridge.invalid/t/' || %[1]s || '","memo":"Demo instance 演示实例","password":"******","userName":"a***"},"instanceId":"' || %[1]s || '"}'`
	var five, fiveIDs []string
	for j := range 5 {
		idj := fixture.InstanceIDSQL(l.seed, fmt.Sprintf("(i + %d) %% %d", j, l.n))
		five, fiveIDs = append(five, fmt.Sprintf(info, idj)), append(fiveIDs, idj)
	}
	return counter + `, r AS MATERIALIZED (SELECT *, ` + id + ` AS id, ` + fixture.OrderIDSQL(l.seed, "i") + ` AS ord,
			CASE k WHEN 'new' THEN 4000 + (n * 7919) % 20000 WHEN 'renew' THEN 3000 + (n * 7919) % 10000
				WHEN 'status' THEN 3000 + (n * 7919) % 10000 ELSE 200 + (n * 7919) % 3000 END AS lat
		FROM (SELECT n, (n * 1000003) % ` + fmt.Sprint(l.n) + ` AS i,
			CASE WHEN n % 100 < 10 THEN 'new' WHEN n % 100 < 80 THEN 'q1' WHEN n % 100 < 85 THEN 'q5'
				WHEN n % 100 < 90 THEN 'renew' WHEN n % 100 < 95 THEN 'status' WHEN n % 100 < 97 THEN 'q404'
				ELSE 'reject' END AS k
			FROM c))
	INSERT INTO calls (request_id, interface, activity, idem_key, instance_id, order_id, order_line_id,
		tenant_id, test, remote, request, response, result_code, result_msg, http_status, latency_ms, latency_us,
		repeat, created_at)
	SELECT printf('%08x%08x%016x', (n * 2654435761) % 4294967296, (n * 40503) % 4294967296, n), 'v2',
		CASE k WHEN 'new' THEN 'newInstance' WHEN 'renew' THEN 'refreshInstance' WHEN 'status' THEN 'updateInstanceStatus'
			ELSE 'queryInstance' END,
		CASE k WHEN 'new' THEN 'newInstance:' || ord || ':' || ord || '-000001'
			WHEN 'renew' THEN 'refreshInstance:' || ord || ':' || ord || '-000001:' || (n % 7)
			WHEN 'status' THEN 'updateInstanceStatus:' || id || ':' || (n % 2) ELSE '' END,
		CASE k WHEN 'q5' THEN '' WHEN 'reject' THEN '' WHEN 'q404' THEN 'gone-' || id ELSE id END,
		CASE k WHEN 'new' THEN ord WHEN 'renew' THEN ord ELSE '' END,
		CASE k WHEN 'new' THEN ord || '-000001' WHEN 'renew' THEN ord || '-000001' ELSE '' END,
		'', 0, printf('100.%d.%d.%d:%d', n % 64, (n / 64) % 256, (n / 16384) % 256, 30000 + n % 30000),
		CASE k WHEN 'new' THEN '{"activity":"newInstance","businessId":"biz-' || ord || '","orderId":"' || ord || '","orderLineId":"' || ord || '-000001"}'
			WHEN 'q5' THEN '{"activity":"queryInstance","instanceId":"' || ` + strings.Join(fiveIDs, ` || ',' || `) + ` || '"}'
			WHEN 'q404' THEN '{"activity":"queryInstance","instanceId":"gone-' || id || '"}'
			WHEN 'renew' THEN '{"activity":"refreshInstance","instanceId":"' || id || '","orderId":"' || ord || '","orderLineId":"' || ord || '-000001","expireTime":"20271231235959","productId":"bench-product","scene":"RENEWAL"}'
			WHEN 'status' THEN '{"activity":"updateInstanceStatus","instanceId":"' || id || '","instanceStatus":"' || CASE n % 2 WHEN 0 THEN 'FREEZE' ELSE 'UNFREEZE' END || '"}'
			ELSE '{"activity":"queryInstance","instanceId":"' || id || '"}' END,
		CASE k WHEN 'new' THEN '{"instanceId":"' || id || '","resultCode":"000000","resultMsg":"success"}'
			WHEN 'q1' THEN '{"info":[' || ` + fmt.Sprintf(info, "id") + ` || '],"resultCode":"000000","resultMsg":"success"}'
			WHEN 'q5' THEN '{"info":[' || ` + strings.Join(five, ` || ',' || `) + ` || '],"resultCode":"000000","resultMsg":"success"}'
			WHEN 'q404' THEN '{"resultCode":"000003","resultMsg":"instance does not exist"}'
			WHEN 'reject' THEN '{"resultCode":"000001","resultMsg":"authentication failed: signature mismatch"}'
			ELSE '{"resultCode":"000000","resultMsg":"success"}' END,
		CASE k WHEN 'q404' THEN '000003' WHEN 'reject' THEN '000001' ELSE '000000' END,
		CASE k WHEN 'q404' THEN 'instance does not exist' WHEN 'reject' THEN 'authentication failed: signature mismatch'
			ELSE 'success' END,
		200, lat / 1000, lat, 0, ` + fmt.Sprint(l.now-span) + ` + n * ` + fmt.Sprint(span) + ` / ` + fmt.Sprint(max(total, 1)) + `
	FROM r`
}
