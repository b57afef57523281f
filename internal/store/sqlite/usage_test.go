package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// TestDownAndUpVersion6: version 6 migrates down to version 5 — the
// metering tables gone, the rest kept — and up again.
func TestDownAndUpVersion6(t *testing.T) {
	ctx := t.Context()
	s := openFile(t, filepath.Join(t.TempDir(), "down6.db"))
	err := s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
		if _, err := tx.InsertLicenseCode(ctx, store.LicenseCode{Code: "LC-1"}); err != nil {
			return err
		}
		_, err := tx.AddUsage(ctx, store.UsagePeriod{InstanceID: "i", Start: time.UnixMilli(3600000), End: time.UnixMilli(7200000), Total: 1})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	p := migrator(t, s.db.DB)
	if _, err := p.DownTo(ctx, 5); err != nil {
		t.Fatalf("migrate down to version 5: %v", err)
	}
	var tables int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 'usage%'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Errorf("%d usage tables after migrating down, want 0", tables)
	}
	if _, err := s.LicenseCode(ctx, "LC-1", false); err != nil {
		t.Errorf("license code after migrating down: %v", err)
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("migrate up again: %v", err)
	}
	counts, err := s.UsagePeriodCounts(ctx, "")
	if err != nil || len(counts) != 0 {
		t.Errorf("UsagePeriodCounts after down and up = %v, %v; want none", counts, err)
	}
}
