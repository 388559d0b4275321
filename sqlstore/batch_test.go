package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// batchStore is a Store over a SQLite file with one table, whose write
// transactions wait on gate before they begin (when it is not nil) and are
// counted.
func batchStore(t *testing.T, gate chan struct{}) (*Store, *sql.DB, *atomic.Int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "b.db")+"?_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE rows (id INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	var begun atomic.Int64
	s := New(Driver{
		Name:  "sqlite",
		Reads: db,
		BeginWrite: func(ctx context.Context) (*sql.Tx, error) {
			if begun.Add(1) == 1 && gate != nil {
				<-gate
			}
			return db.BeginTx(ctx, nil)
		},
		IsUnique: func(error) bool { return false },
	})
	return s, db, &begun
}

// TestGroupCommit: writes that wait while a transaction runs share the
// next one; each is told its own outcome; one that fails leaves nothing,
// the others commit; a caller gone before its turn is not run.
func TestGroupCommit(t *testing.T) {
	gate := make(chan struct{})
	s, db, begun := batchStore(t, gate)
	ctx := t.Context()

	// The first write holds the transaction up until every other write is
	// waiting; they then go in one batch (or two: maxBatch).
	const n = 40
	errs := make([]error, n+1)
	var wg sync.WaitGroup
	wg.Go(func() {
		errs[0] = s.write(ctx, func(tx *wtx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO rows (id) VALUES (1000)`)
			return err
		})
	})
	// The first write is in BeginWrite, waiting on the gate.
	waitFor(t, func() bool { return begun.Load() == 1 })
	// A caller that has gone before its turn leaves the queue at once.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	errs[n] = s.write(gone, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO rows (id) VALUES (?)`, n)
		return err
	})
	for i := 1; i < n; i++ {
		wg.Go(func() {
			errs[i] = s.write(ctx, func(tx *wtx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO rows (id) VALUES (?)`, i); err != nil {
					return err
				}
				if i%3 == 0 {
					return fmt.Errorf("write %d fails after its insert", i)
				}
				return nil
			})
		})
	}
	// Every other write waits for the next batch.
	waitFor(t, func() bool {
		s.wmu.Lock()
		defer s.wmu.Unlock()
		return len(s.waiting) == n-1
	})
	close(gate)
	wg.Wait()

	if errs[0] != nil {
		t.Errorf("first write: %v", errs[0])
	}
	for i := 1; i <= n; i++ {
		switch {
		case i == n:
			if !errors.Is(errs[i], context.Canceled) {
				t.Errorf("write %d, gone before its turn: %v, want context.Canceled", i, errs[i])
			}
		case i%3 == 0:
			if errs[i] == nil || errs[i].Error() != fmt.Sprintf("write %d fails after its insert", i) {
				t.Errorf("write %d: %v, want its own error", i, errs[i])
			}
		default:
			if errs[i] != nil {
				t.Errorf("write %d: %v", i, errs[i])
			}
		}
	}
	rows, err := db.Query(`SELECT id FROM rows ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[int]bool{}
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got[id] = true
	}
	for i := 1; i <= n; i++ {
		if want := i%3 != 0 && i != n; got[i] != want {
			t.Errorf("row %d stored: %v, want %v", i, got[i], want)
		}
	}
	if !got[1000] {
		t.Error("the first write's row is missing")
	}
	if b := begun.Load(); b > 3 {
		t.Errorf("%d transactions for %d writes that waited together, want at most 3 (batches of %d)", b, n+1, maxBatch)
	}
}

// TestGroupCommitFails: when the batch's commit fails, no write of it is
// told it succeeded.
func TestGroupCommitFails(t *testing.T) {
	s, db, _ := batchStore(t, nil)
	ctx := t.Context()
	if _, err := db.Exec(`CREATE TABLE one (id INTEGER PRIMARY KEY, x INTEGER REFERENCES rows (id) DEFERRABLE INITIALLY DEFERRED)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA foreign_keys = ON`); err != nil {
		t.Fatal(err)
	}
	// A deferred foreign key fails at COMMIT: the write's function
	// succeeded, yet nothing may be reported as done.
	err := s.write(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO one (id, x) VALUES (1, 99)`)
		return err
	})
	if err == nil {
		t.Fatal("a write whose commit failed was reported done")
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM one`).Scan(&n); err != nil || n != 0 {
		t.Errorf("rows after a failed commit: %d (%v)", n, err)
	}
}

// waitFor polls cond until it holds, or fails the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommitPanic: a write that panics fails its batch, with an error
// to every caller, and the writes after it go on.
func TestGroupCommitPanic(t *testing.T) {
	s, db, _ := batchStore(t, nil)
	ctx := t.Context()
	err := s.write(ctx, func(tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO rows (id) VALUES (1)`); err != nil {
			return err
		}
		panic("a bug")
	})
	if err == nil || !strings.Contains(err.Error(), "a bug") {
		t.Fatalf("a write that panicked: %v", err)
	}
	if err := s.write(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO rows (id) VALUES (2)`)
		return err
	}); err != nil {
		t.Fatalf("the next write: %v", err)
	}
	var ids []int
	rows, err := db.Query(`SELECT id FROM rows`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int
		_ = rows.Scan(&id)
		ids = append(ids, id)
	}
	if len(ids) != 1 || ids[0] != 2 {
		t.Errorf("rows %v, want [2]", ids)
	}
}

// TestGroupCommitLeaderPanics: a panic outside a write's function (here
// in BeginWrite) fails the writes of its batch and leaves the store
// usable: the next write commits.
func TestGroupCommitLeaderPanics(t *testing.T) {
	s, db, begun := batchStore(t, nil)
	begin := s.d.BeginWrite
	s.d.BeginWrite = func(ctx context.Context) (*sql.Tx, error) {
		if begun.Load() == 0 {
			begun.Add(1)
			panic("driver bug")
		}
		return begin(ctx)
	}
	ctx := t.Context()
	func() {
		defer func() {
			if v := recover(); v != "driver bug" {
				t.Errorf("recovered %v, want the driver's panic", v)
			}
		}()
		_ = s.write(ctx, func(tx *wtx) error { return nil })
	}()
	done := make(chan error, 1)
	go func() {
		done <- s.write(ctx, func(tx *wtx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO rows (id) VALUES (7)`)
			return err
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the write after the panic: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write after a panic waits forever: the lead was left taken")
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM rows WHERE id = 7`).Scan(&n); err != nil || n != 1 {
		t.Errorf("row 7: %d (%v)", n, err)
	}
}

// TestGroupCommitGiveUp: a write waiting behind a stuck transaction gives
// up at its deadline with nothing of it run, and a stuck transaction is
// rolled back once every caller of its batch has gone.
func TestGroupCommitGiveUp(t *testing.T) {
	gate := make(chan struct{})
	s, db, begun := batchStore(t, nil)
	begin := s.d.BeginWrite
	s.d.BeginWrite = func(ctx context.Context) (*sql.Tx, error) {
		if begun.Add(1) == 1 {
			select { // stuck, as on a lock another process holds
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return begin(ctx)
	}
	stuck, cancelStuck := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() {
		first <- s.write(stuck, func(tx *wtx) error {
			_, err := tx.ExecContext(stuck, `INSERT INTO rows (id) VALUES (1)`)
			return err
		})
	}()
	waitFor(t, func() bool { return begun.Load() == 1 })

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.write(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO rows (id) VALUES (2)`)
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("a write waiting behind a stuck one: %v after %s, want its deadline", err, time.Since(start))
	}

	// The stuck batch's only caller goes: the batch is given up.
	cancelStuck()
	select {
	case err := <-first:
		if err == nil {
			t.Fatal("a batch given up reported success")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a batch whose callers are all gone is still stuck")
	}
	close(gate)
	if err := s.write(t.Context(), func(tx *wtx) error {
		_, err := tx.ExecContext(t.Context(), `INSERT INTO rows (id) VALUES (3)`)
		return err
	}); err != nil {
		t.Fatalf("a write after: %v", err)
	}
	var ids []int
	rows, err := db.Query(`SELECT id FROM rows ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int
		_ = rows.Scan(&id)
		ids = append(ids, id)
	}
	if len(ids) != 1 || ids[0] != 3 {
		t.Errorf("rows %v, want [3]: neither the write that gave up nor the batch given up", ids)
	}
}
