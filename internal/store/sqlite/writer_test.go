package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/koobridge/koobridge/internal/store"
)

// holdWriter runs a write that keeps the writer busy until the returned
// function is called, so that the writes queued meanwhile make one batch
// with it. It returns once the write is running.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	running, hold, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var once sync.Once
	go func() {
		// run: when another member loses the batch, this one runs again.
		done <- s.run(context.Background(), false, func(ctx context.Context, tx *cachedTx) error {
			once.Do(func() { close(running) })
			<-hold
			return nil
		})
	}()
	<-running
	return func() {
		close(hold)
		if err := <-done; err != nil {
			t.Errorf("the holding write: %v", err)
		}
	}
}

// waitQueued waits until n writes wait for the writer.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.queue) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", len(s.queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// nonces returns the nonces stored, read through another connection.
func nonces(t *testing.T, s *Store) map[string]bool {
	t.Helper()
	rows, err := s.db.DB.QueryContext(context.Background(), `SELECT nonce FROM nonces`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got[n] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func insertNonce(ctx context.Context, tx *cachedTx, nonce string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO nonces (nonce, expires_at) VALUES (?, ?)`, nonce, time.Now().Add(time.Hour).UnixMilli())
	return err
}

// TestGroupCommit checks that writes waiting together share one
// transaction, and that each is answered after its commit.
func TestGroupCommit(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "group.db"))
	ctx := context.Background()
	const n = 20
	release := holdWriter(t, s)
	before := s.batches.Load()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			nonce := fmt.Sprint("n", i)
			err := s.Tx(ctx, func(ctx context.Context, tx store.Tx) error {
				return insertNonce(ctx, tx.(*txImpl).tx, nonce)
			})
			if err != nil {
				t.Errorf("Tx %d: %v", i, err)
				return
			}
			// Answered, so committed: another connection sees it.
			if !nonces(t, s)[nonce] {
				t.Errorf("Tx %d answered before its write was committed", i)
			}
		})
	}
	waitQueued(t, s, n)
	release()
	wg.Wait()
	if got := nonces(t, s); len(got) != n {
		t.Errorf("%d nonces stored, want %d", len(got), n)
	}
	// One transaction for the holding write and those queued behind it,
	// or a few if the batch ran out of time (maxBatchTime) on a slow
	// machine; one each without group commit.
	if b := s.batches.Load() - before; b > n/2 {
		t.Errorf("%d writes waiting together took %d transactions, want them shared", n+1, b)
	}
}

// txImpl names the store's transaction type for the tests.
type txImpl = tx

// TestGroupCommitMembersFailAlone checks that the members of one batch
// fail alone: a function's error or panic, or a statement's constraint
// violation, undoes only its own writes, and the others commit.
func TestGroupCommitMembersFailAlone(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "alone.db"))
	ctx := context.Background()
	if _, err := s.exec(ctx, `INSERT INTO nonces (nonce, expires_at) VALUES ('taken', 1)`); err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, s)
	before := s.batches.Load()
	errFail := errors.New("the function failed")
	results := make(map[string]any)
	var mu sync.Mutex
	var wg sync.WaitGroup
	queued := 0
	add := func(name string, single bool, fn func(ctx context.Context, tx *cachedTx) error) {
		queued++
		wg.Go(func() {
			var res any
			func() {
				defer func() {
					if v := recover(); v != nil {
						res = fmt.Sprint("panic: ", v)
					}
				}()
				res = s.write(ctx, single, fn)
			}()
			mu.Lock()
			results[name] = res
			mu.Unlock()
		})
		waitQueued(t, s, queued)
	}
	add("ok1", false, func(ctx context.Context, tx *cachedTx) error { return insertNonce(ctx, tx, "ok1") })
	add("fails", false, func(ctx context.Context, tx *cachedTx) error {
		if err := insertNonce(ctx, tx, "fails"); err != nil {
			return err
		}
		return errFail
	})
	add("panics", false, func(ctx context.Context, tx *cachedTx) error {
		if err := insertNonce(ctx, tx, "panics"); err != nil {
			return err
		}
		panic("boom")
	})
	add("duplicate", true, func(ctx context.Context, tx *cachedTx) error { return insertNonce(ctx, tx, "taken") })
	add("ok2", true, func(ctx context.Context, tx *cachedTx) error { return insertNonce(ctx, tx, "ok2") })
	release()
	wg.Wait()

	if b := s.batches.Load() - before; b != 1 {
		t.Errorf("the writes took %d transactions, want 1 (with the holding write)", b)
	}
	got := nonces(t, s)
	for nonce, want := range map[string]bool{"taken": true, "ok1": true, "ok2": true, "fails": false, "panics": false} {
		if got[nonce] != want {
			t.Errorf("nonce %s stored = %v, want %v", nonce, got[nonce], want)
		}
	}
	if results["ok1"] != nil && results["ok1"] != error(nil) {
		t.Errorf("ok1: %v", results["ok1"])
	}
	if err, _ := results["fails"].(error); !errors.Is(err, errFail) {
		t.Errorf("fails: %v, want its own error", results["fails"])
	}
	if results["panics"] != "panic: boom" {
		t.Errorf("panics: %v, want the panic re-raised in its caller", results["panics"])
	}
	if err, _ := results["duplicate"].(error); err == nil || sqliteCode(err) == 0 {
		t.Errorf("duplicate: %v, want the constraint violation", results["duplicate"])
	}
}

// TestGroupCommitLostTransaction checks that when a member's failure ends
// the shared transaction, nothing of the batch is committed, that member
// gets its error, and the others run again and commit.
func TestGroupCommitLostTransaction(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "lost.db"))
	ctx := context.Background()
	release := holdWriter(t, s)
	var wg sync.WaitGroup
	var okErr, loserErr error
	wg.Go(func() {
		okErr = s.run(ctx, false, func(ctx context.Context, tx *cachedTx) error { return insertNonce(ctx, tx, "before") })
	})
	waitQueued(t, s, 1)
	wg.Go(func() {
		loserErr = s.write(ctx, false, func(ctx context.Context, tx *cachedTx) error {
			// Ends the transaction under the batch, as SQLite does after
			// an interrupt or an I/O error.
			_, err := tx.Tx.ExecContext(ctx, `ROLLBACK`)
			if err != nil {
				return err
			}
			return errors.New("the transaction is gone")
		})
	})
	waitQueued(t, s, 2)
	release()
	wg.Wait()
	if okErr != nil {
		t.Errorf("the other member: %v, want it run again and committed", okErr)
	}
	if loserErr == nil {
		t.Error("the member that ended the transaction succeeded")
	}
	if !nonces(t, s)["before"] {
		t.Error("the other member's write is missing")
	}
}

// TestGroupCommitAbandoned checks that a write whose caller gives up
// while it waits is never run.
func TestGroupCommitAbandoned(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "abandoned.db"))
	release := holdWriter(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- s.write(ctx, false, func(ctx context.Context, tx *cachedTx) error {
			ran <- struct{}{}
			return insertNonce(ctx, tx, "abandoned")
		})
	}()
	waitQueued(t, s, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("write = %v, want context.Canceled", err)
	}
	release()
	// A write after it runs after it: the abandoned one was skipped.
	if err := s.run(context.Background(), true, func(ctx context.Context, tx *cachedTx) error { return insertNonce(ctx, tx, "after") }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
		t.Error("the abandoned write ran")
	default:
	}
	if nonces(t, s)["abandoned"] {
		t.Error("the abandoned write was stored")
	}
}

// TestGroupCommitInterruptedMember checks that a member whose context ends
// while its statement runs (the driver interrupts it, and SQLite rolls the
// shared transaction back) loses the batch, so that the writes after it
// run once, in a transaction, and are not committed twice.
func TestGroupCommitInterruptedMember(t *testing.T) {
	for _, single := range []bool{true, false} {
		t.Run(map[bool]string{true: "then a statement", false: "then a transaction"}[single], func(t *testing.T) {
			s := openFile(t, filepath.Join(t.TempDir(), "interrupted.db"))
			bg := context.Background()
			if _, err := s.db.DB.ExecContext(bg, `CREATE TABLE scratch (x INTEGER)`); err != nil {
				t.Fatal(err)
			}
			ctxA, cancelA := context.WithCancel(bg)
			started := make(chan struct{})
			errA := make(chan error, 1)
			go func() {
				errA <- s.write(ctxA, true, func(ctx context.Context, tx *cachedTx) error {
					close(started)
					// Long enough to be interrupted.
					_, err := tx.ExecContext(ctx, `INSERT INTO scratch (x)
						WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100000000) SELECT x FROM c`)
					return err
				})
			}()
			<-started
			var runs atomic.Int32
			errB := make(chan error, 1)
			go func() {
				errB <- s.run(bg, single, func(ctx context.Context, tx *cachedTx) error {
					runs.Add(1)
					return insertNonce(ctx, tx, "b")
				})
			}()
			waitQueued(t, s, 1)
			time.Sleep(50 * time.Millisecond) // A's statement is running
			cancelA()
			if err := <-errA; err == nil {
				t.Error("the interrupted write succeeded")
			}
			if err := <-errB; err != nil {
				t.Errorf("the write after it: %v", err)
			}
			if n := runs.Load(); n != 1 {
				t.Errorf("the write after it ran %d times, want once", n)
			}
			var rows int
			if err := s.db.DB.QueryRowContext(bg, `SELECT count(*) FROM scratch`).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != 0 {
				t.Errorf("%d rows of the interrupted write stored", rows)
			}
		})
	}
}

// TestSweepDeadlineLeavesOthersAlone is the same through the store: the
// ledger sweep's DELETE cut off by its deadline, and a call's fresh nonce
// written meanwhile, which must not be taken for a replay of itself.
func TestSweepDeadlineLeavesOthersAlone(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "sweep.db"))
	bg := context.Background()
	if _, err := s.db.DB.ExecContext(bg, `INSERT INTO calls (request_id, created_at, result_code)
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 600000) SELECT 'r'||x, x, '000000' FROM c`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 150*time.Millisecond)
	defer cancel()
	errDel := make(chan error, 1)
	go func() {
		_, err := s.DeleteCalls(ctx, store.CallsAnswered, time.Now().Add(time.Hour), 600000)
		errDel <- err
	}()
	time.Sleep(50 * time.Millisecond) // the DELETE is running
	if err := s.RememberNonce(bg, "fresh-nonce", time.Now().Add(time.Minute)); err != nil {
		t.Errorf("RememberNonce of a nonce never seen before: %v", err)
	}
	<-errDel
}

// TestGroupCommitContextEndsAfterStatement checks that a single statement
// whose context ends after it ran, but while its batch is open, does not
// report success: the batch is rolled back for it, so nothing it wrote
// stays.
func TestGroupCommitContextEndsAfterStatement(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "after.db"))
	ctx, cancel := context.WithCancel(context.Background())
	err := s.write(ctx, true, func(ctx context.Context, tx *cachedTx) error {
		if err := insertNonce(ctx, tx, "late"); err != nil {
			return err
		}
		cancel()
		return nil
	})
	stored := nonces(t, s)["late"]
	if err == nil && !stored {
		t.Errorf("write returned nil but its nonce was not stored")
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("write = %v, want context.Canceled", err)
	}
}

// TestWriteAfterClose checks that a write after Close fails as the
// database being unavailable, instead of waiting for a writer that has
// stopped.
func TestWriteAfterClose(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "closed.db"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err := s.RememberNonce(context.Background(), "after-close", time.Now().Add(time.Minute))
	// Not the busy timeout's "database busy": the write was never queued.
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "store closed") {
		t.Errorf("RememberNonce after Close = %v, want store.ErrUnavailable saying the store is closed", err)
	}
}
