package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestInstancesByIDUsesPrimaryKey checks that reading instances by a list
// of ids looks each up, instead of scanning the table.
func TestInstancesByIDUsesPrimaryKey(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "byid.db"))
	rows, err := s.db.DB.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+instancesByIDQuery, `["a","b"]`)
	if err != nil {
		t.Fatal(err)
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
	if got := strings.Join(plan, "; "); !strings.Contains(got, "SEARCH instances USING INDEX sqlite_autoindex_instances_1 (id=?)") {
		t.Errorf("plan %q, want a search of the primary key", got)
	}
}
