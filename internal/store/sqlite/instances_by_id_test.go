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
	if got := queryPlan(t, s, instancesByIDQuery, `["a","b"]`); !strings.Contains(got, "SEARCH instances USING INDEX sqlite_autoindex_instances_1 (id=?)") {
		t.Errorf("plan %q, want a search of the primary key", got)
	}
}
