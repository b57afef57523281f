package sqlite

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// query is an SQL statement and its arguments.
type query struct {
	sql  string
	args []any
}

// q makes a query of what a query builder returns.
func q(sql string, args []any) query { return query{sql, args} }

// queryPlan is SQLite's EXPLAIN QUERY PLAN of query, its lines joined by
// "; ".
func queryPlan(t *testing.T, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.db.DB.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", query, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}

// TestListsWalkTheirIndex: a filtered page of the admin API's and the
// console's lists walks an index in the list's order (schema version 10)
// and stops after a page, instead of sorting every row the filter
// selects (a TEMP B-TREE) or scanning the table. The database is empty,
// which changes nothing: without ANALYZE's statistics, which koobridge
// never gathers, SQLite plans alike for any number of rows.
func TestListsWalkTheirIndex(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "plan.db"))
	yes, no := true, false
	since, until := time.Unix(1700000000, 0), time.Unix(1700086400, 0)
	claim := func(kinds []string) query {
		idQuery, args := claimIDQuery(kinds)
		return query{`SELECT ` + idQuery, append(args, sql.Named("now", 0))}
	}
	for _, tc := range []struct {
		name string
		q    query
		want []string // in the plan, in this order
		sort bool     // a TEMP B-TREE is expected (of a few rows, or of ids only)
	}{
		{"instances by status", q(instancesQuery(store.InstanceFilter{Status: store.StatusActive})),
			[]string{"SEARCH instances USING INDEX instances_status_id (status=?)"}, false},
		{"instances by status, a later page", q(instancesQuery(store.InstanceFilter{Status: store.StatusActive, AfterID: "i-5"})),
			[]string{"SEARCH instances USING INDEX instances_status_id (status=? AND id>?)"}, false},
		{"test instances", q(instancesQuery(store.InstanceFilter{Test: &yes})),
			[]string{"SCAN instances USING INDEX instances_test_id"}, false},
		{"test instances, a later page", q(instancesQuery(store.InstanceFilter{Test: &yes, AfterID: "i-5"})),
			[]string{"SEARCH instances USING INDEX instances_test_id (id>?)"}, false},
		{"test instances of a status", q(instancesQuery(store.InstanceFilter{Status: store.StatusFailed, Test: &yes})),
			[]string{"SCAN instances USING INDEX instances_test_id"}, false},
		{"other instances", q(instancesQuery(store.InstanceFilter{Test: &no})),
			[]string{"SCAN instances USING INDEX sqlite_autoindex_instances_1"}, false},
		{"other instances of a status", q(instancesQuery(store.InstanceFilter{Status: store.StatusFailed, Test: &no})),
			[]string{"SEARCH instances USING INDEX instances_status_id (status=?)"}, false},
		// An order has a few instances: sorting them beats walking every
		// instance of the status or test flag.
		{"instances of an order and a status", q(instancesQuery(store.InstanceFilter{OrderID: "O1", Status: store.StatusActive})),
			[]string{"SEARCH instances USING INDEX sqlite_autoindex_instances_2 (order_id=?)"}, true},
		{"test instances of an order", q(instancesQuery(store.InstanceFilter{OrderID: "O1", Test: &yes})),
			[]string{"SEARCH instances USING INDEX sqlite_autoindex_instances_2 (order_id=?)"}, true},
		{"calls by result code", q(callsQuery(store.CallFilter{ResultCode: "000003"})),
			[]string{"SEARCH calls USING INDEX calls_result_code_id (result_code=?)"}, false},
		{"calls by result code, a later page", q(callsQuery(store.CallFilter{ResultCode: "000001", BeforeID: 500})),
			[]string{"SEARCH calls USING INDEX calls_result_code_id (result_code=? AND id<?)"}, false},
		{"successful calls", q(callsQuery(store.CallFilter{ResultCode: store.SuccessCode})),
			[]string{"SCAN calls"}, false},
		{"calls of an instance by result code", q(callsQuery(store.CallFilter{InstanceID: "i-1", ResultCode: "000003"})),
			[]string{"SEARCH calls USING INDEX calls_instance_id (instance_id=?)"}, false},
		{"calls of a tenant by result code", q(callsQuery(store.CallFilter{TenantID: "T1", ResultCode: "000001"})),
			[]string{"SEARCH calls USING INDEX calls_tenant_id_id (tenant_id=?)"}, false},
		{"calls of an order by result code", q(callsQuery(store.CallFilter{OrderID: "O1", ResultCode: "000001"})),
			[]string{"SEARCH calls USING INDEX calls_order_id (order_id=?)"}, false},
		// No index holds the window in id order: the ids alone are sorted.
		{"calls in a time window", q(callsQuery(store.CallFilter{Since: since, Until: until})),
			[]string{"SEARCH calls USING INTEGER PRIMARY KEY (rowid=?)",
				"SEARCH calls USING COVERING INDEX calls_created_at (created_at>? AND created_at<?)"}, true},
		{"calls in a time window by result code", q(callsQuery(store.CallFilter{Since: since, Until: until, ResultCode: "000001"})),
			[]string{"SEARCH calls USING INTEGER PRIMARY KEY (rowid=?)",
				"SEARCH calls USING INDEX calls_result_code_id (result_code=?)"}, false},
		{"jobs by state", q(jobsQuery(store.JobFilter{State: store.JobDone})),
			[]string{"SEARCH jobs USING INDEX jobs_state_id (state=?)"}, false},
		{"jobs by state, a later page", q(jobsQuery(store.JobFilter{State: store.JobDead, BeforeID: 500})),
			[]string{"SEARCH jobs USING INDEX jobs_state_id (state=? AND id<?)"}, false},
		{"jobs by kind", q(jobsQuery(store.JobFilter{Kind: "provision"})),
			[]string{"SEARCH jobs USING INDEX jobs_kind_id (kind=?)"}, false},
		// Done jobs are most of a kind's; the others are few.
		{"done jobs of a kind", q(jobsQuery(store.JobFilter{Kind: "notify", State: store.JobDone})),
			[]string{"SEARCH jobs USING INDEX jobs_kind_id (kind=?)"}, false},
		{"dead jobs of a kind", q(jobsQuery(store.JobFilter{Kind: "provision", State: store.JobDead})),
			[]string{"SEARCH jobs USING INDEX jobs_state_id (state=?)"}, false},
		// The claim keeps its index for the due jobs, whatever its kinds;
		// the running ones, with a lease to check, are read by state: few,
		// and sorted with the due ones by run_at. An index on kind would
		// read every job of the kind.
		{"claim", claim(nil), []string{"MULTI-INDEX OR",
			"SEARCH jobs USING INDEX jobs_state_run_at (state=? AND run_at<?)",
			"SEARCH jobs USING INDEX jobs_state_id (state=?)"}, true},
		{"claim of a kind", claim([]string{"provision"}), []string{"MULTI-INDEX OR",
			"SEARCH jobs USING INDEX jobs_state_run_at (state=? AND run_at<?)",
			"SEARCH jobs USING INDEX jobs_state_id (state=?)"}, true},
		{"claim of three kinds", claim([]string{"provision", "notify", "ledger.sweep"}), []string{"MULTI-INDEX OR",
			"SEARCH jobs USING INDEX jobs_state_run_at (state=? AND run_at<?)",
			"SEARCH jobs USING INDEX jobs_state_id (state=?)"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := queryPlan(t, s, tc.q.sql, tc.q.args...)
			rest := got
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("plan %q, want %q", got, tc.want)
				}
				rest = rest[i+len(w):]
			}
			if !tc.sort && strings.Contains(got, "TEMP B-TREE") {
				t.Errorf("plan %q sorts, want %q without a sort", got, tc.want)
			}
		})
	}
}
