package sqlite

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/koobridge/koobridge/internal/store"
)

// TestDeleteCallsUsesKindIndex: the retention sweep's batch query reads
// the index of its kind of call (migration 9), not calls_created_at,
// which would make it read every older call of the other kind on each
// batch while it holds the one writer.
func TestDeleteCallsUsesKindIndex(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "plan.db")) // migrated to the newest version
	for kind, index := range map[store.CallKind]string{
		store.CallsRejected: "calls_rejected_created_at",
		store.CallsAnswered: "calls_answered_created_at",
	} {
		cond, err := kind.Condition()
		if err != nil {
			t.Fatal(err)
		}
		got := queryPlan(t, s, `SELECT id FROM calls WHERE created_at < ? AND `+cond+` ORDER BY created_at, id LIMIT ?`, 0, 1000)
		if !strings.Contains(got, "USING INDEX "+index) || strings.Contains(got, "TEMP B-TREE") {
			t.Errorf("%s calls: plan %q, want a search of %s with no sort", kind, got, index)
		}
	}
}
