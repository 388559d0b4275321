// Package sqlstore is DeployDB's store over SQL: every query and write of
// the deploydb.Store contract, shared by the SQLite store (package sqlite)
// and the PostgreSQL store (package postgres). A Driver says what differs
// between the two: how a write transaction is begun and serialized, how a
// snapshot read is begun, placeholders, unique violations and a few
// functions. The SQL is written once, in what both accept: ? placeholders
// (rebound for PostgreSQL), RETURNING, IS NOT DISTINCT FROM,
// ON CONFLICT, CAST.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deploydb/deploydb"
)

// Driver is what differs between the databases a Store runs on.
type Driver struct {
	// Name names the database in error messages: "sqlite", "postgres".
	Name string
	// Reads runs the reads that take one query.
	Reads *sql.DB
	// BeginWrite begins a write transaction that no other write of any
	// process on the same database runs beside (the store's writes are
	// serialized), and that sees every write committed before it.
	BeginWrite func(ctx context.Context) (*sql.Tx, error)
	// BeginSnapshot begins a read-only transaction whose queries see one
	// committed state.
	BeginSnapshot func(ctx context.Context) (*sql.Tx, error)
	// Rebind turns the ? placeholders of a query into the database's; nil
	// keeps them.
	Rebind func(string) string
	// IsUnique reports whether err is a unique or primary key violation.
	IsUnique func(error) bool
	// Contains returns SQL that is true when the text column col contains
	// the text of the next parameter, case-sensitively.
	Contains func(col string) string
	// Collate follows a text column in ORDER BY so that text sorts by
	// bytes ("" when that is the default).
	Collate string
	// IndexedBy returns what follows a table in FROM to make a query use
	// the named index, where the database's planner needs telling (nil:
	// it does not). SQLite keeps no statistics unless asked, and without
	// them it can prefer an index that walks the history to a partial
	// index of a few rows.
	IndexedBy func(index string) string
	// Lateral says that the database joins LATERAL subqueries
	// (PostgreSQL): a query that wants a few rows of each row of another
	// table says so with one. SQLite has none; it runs a correlated IN
	// subquery once per row, which PostgreSQL cannot do without reading
	// the whole table for each.
	Lateral bool
	// OneProcess says that one process at a time writes the database
	// (SQLite): a report may then read its plan before it queues
	// (prereadPlan). Replicas sharing a PostgreSQL database may run
	// different versions during a rolling upgrade, and an older one does
	// not note every service it changes.
	OneProcess bool
	// LastInsertID says that an INSERT's new id is best had from the
	// result (SQLite: RETURNING builds a temporary table each time, and
	// took twice as long as the insert itself); false: RETURNING id.
	LastInsertID bool
	// Announce, when set, runs in a write transaction that enqueued
	// deliveries or recorded events, just before it commits, so that other
	// processes on the database hear of the commit (PostgreSQL: NOTIFY,
	// delivered on commit). They call Store.Committed.
	Announce func(ctx context.Context, tx *sql.Tx, deliveries, events bool) error
	// Unavailable says, in words a caller can act on, why err means the
	// database cannot serve now (unreachable, connection lost, disk full,
	// read-only), or returns "" when err is not such a failure. The store
	// then returns EUNAVAILABLE, never an internal error.
	Unavailable func(err error) string
	// Shown names the database in the messages of those errors: "the
	// SQLite database /var/lib/deploydb.db".
	Shown string
}

// Store implements deploydb.Store over a Driver. The packages sqlite and
// postgres open one; it holds no connection of its own.
type Store struct {
	// Now returns the current time; tests replace it.
	Now func() time.Time

	d     Driver
	r     querier
	ready chan struct{}

	wmu     sync.Mutex      // guards waiting and leading
	waiting []*pendingWrite // writes waiting for the next batch, in arrival order
	leading bool            // a caller is committing batches

	claims claims // the dispatchers' claims, where one process writes (outbox.go)
	// writesDown is set when a batch failed because the database takes
	// no writes now (Driver.Unavailable: a full disk, an I/O error), and
	// cleared by the next commit.
	writesDown atomic.Bool

	events broadcast   // closed after each commit that recorded events (events.go)
	counts eventCounts // events this store's commits recorded, by type (events.go)

	cdevents atomic.Bool                     // the CDEvents schemas are compiled (compileCDEvents)
	checked  atomic.Pointer[deploydb.Config] // the last config compileCDEvents looked at
}

// New returns a store over d.
func New(d Driver) *Store {
	if d.Rebind == nil {
		d.Rebind = func(q string) string { return q }
	}
	s := &Store{Now: time.Now, d: d, ready: make(chan struct{}, 1), claims: claims{until: map[int64]int64{}}}
	s.r = rebound{d.Reads, d.Rebind}
	return s
}

// Ping checks the database answers. Returns EUNAVAILABLE, naming the
// database and why, if it does not.
func (s *Store) Ping(ctx context.Context) error {
	err := s.d.Reads.PingContext(ctx)
	if err == nil {
		return nil
	}
	why := ""
	if s.d.Unavailable != nil {
		why = s.d.Unavailable(err)
	}
	if why == "" {
		why = "it does not answer"
	}
	return fmt.Errorf("%w: %w", deploydb.Errorf(deploydb.EUNAVAILABLE, "%s is unavailable: %s", s.shown(), why), err)
}

// DeliveriesReady signals (without blocking) after a commit that
// enqueued webhook deliveries: this process's, and another's that the
// Driver announces (Committed).
func (s *Store) DeliveriesReady() <-chan struct{} { return s.ready }

// indexedBy is Driver.IndexedBy, "" when the driver has none.
func (s *Store) indexedBy(index string) string {
	if s.d.IndexedBy == nil {
		return ""
	}
	return s.d.IndexedBy(index)
}

func (s *Store) now() deploydb.Time { return deploydb.NewTime(s.Now()) }

// wtx is a write transaction and what it did that others must hear of
// once it commits. Its queries take ? placeholders. Its statements run
// under the context of the batch it is part of (see write), not the
// context the caller passes them: one caller that goes away must not
// interrupt the statements of a transaction others share.
type wtx struct {
	rebound
	ctx       context.Context
	delivered bool // enqueued webhook deliveries
	recorded  bool // recorded events
	// What the status matrix shows that this transaction changed: the
	// rows of services (a deployment's status or its cell), or more than
	// rows (whole: a lock).
	services map[string]bool
	whole    bool
	types    []deploydb.EventType // the types of the events recorded, one per event
	// batch is what the writes before this one in its batch changed
	// together (nil outside a batch).
	batch *wtx
	// lastInsertID is Driver.LastInsertID.
	lastInsertID bool
}

// insert runs an INSERT of one row and returns the row's new id: from the
// result where the driver gives it (Driver.LastInsertID), else by
// RETURNING id.
func (t *wtx) insert(ctx context.Context, query string, args ...any) (int64, error) {
	if t.lastInsertID {
		res, err := t.ExecContext(ctx, query, args...)
		if err != nil {
			return 0, err
		}
		return res.LastInsertId()
	}
	var id int64
	err := t.QueryRowContext(ctx, query+` RETURNING id`, args...).Scan(&id)
	return id, err
}

// QueryContext runs a query with ? placeholders under the batch's context.
func (t *wtx) QueryContext(_ context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.rebound.QueryContext(t.ctx, query, args...)
}

// QueryRowContext runs a query with ? placeholders under the batch's
// context.
func (t *wtx) QueryRowContext(_ context.Context, query string, args ...any) *sql.Row {
	return t.rebound.QueryRowContext(t.ctx, query, args...)
}

// ExecContext runs a statement with ? placeholders under the batch's
// context.
func (t *wtx) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	return t.rebound.ExecContext(t.ctx, query, args...)
}

// changedService notes that the transaction changed the status matrix's
// row of service.
func (t *wtx) changedService(service string) {
	if t.services == nil {
		t.services = map[string]bool{}
	}
	t.services[service] = true
}

// moveStatusVersion moves status_version on when the transaction changed
// what the status matrix shows, and notes which rows it changed, so that
// a matrix kept by any process on the database is brought up to date
// (httpapi): the services' rows, or the whole matrix.
func (t *wtx) moveStatusVersion(ctx context.Context) error {
	if !t.whole && len(t.services) == 0 {
		return nil
	}
	var n int64
	const move = `UPDATE status_version SET n = n + 1, whole = CASE WHEN ? = 1 THEN n + 1 ELSE whole END WHERE id = 1`
	if t.lastInsertID { // no RETURNING, as in insert
		if _, err := t.ExecContext(ctx, move, b2i(t.whole)); err != nil {
			return err
		}
		if err := t.QueryRowContext(ctx, `SELECT n FROM status_version WHERE id = 1`).Scan(&n); err != nil {
			return err
		}
	} else if err := t.QueryRowContext(ctx, move+` RETURNING n`, b2i(t.whole)).Scan(&n); err != nil {
		return err
	}
	for svc := range t.services {
		if _, err := t.ExecContext(ctx, `INSERT INTO status_services (service, n) VALUES (?, ?) ON CONFLICT (service) DO UPDATE SET n = excluded.n`, svc, n); err != nil {
			return err
		}
	}
	return nil
}

// maxBatch bounds how many writes share one transaction.
const maxBatch = 64

// pendingWrite is a write waiting for its turn in a batch.
type pendingWrite struct {
	ctx  context.Context
	fn   func(tx *wtx) error
	done chan error    // the write's outcome, once its batch committed or failed
	lead chan struct{} // closed to make this write's caller commit the next batch
}

// write runs fn in a write transaction and commits it, then wakes the
// dispatcher and the live views if the transaction gave them something.
//
// Group commit: writes that arrive while a transaction is committing wait,
// and the next transaction runs all of them (up to maxBatch), one after
// the other, each inside a savepoint, and commits once: one fsync (SQLite)
// or one round of the advisory lock and WAL flush (PostgreSQL) for the
// whole batch. Each write still sees everything the writes before it did,
// exactly as if it had its own transaction; one that fails is rolled back
// to its savepoint alone and its caller gets its error; no caller hears of
// success before the commit that makes its write durable. The caller whose
// write arrives when no batch is running commits the batch, then hands the
// lead to the first write still waiting.
func (s *Store) write(ctx context.Context, fn func(tx *wtx) error) error {
	w := &pendingWrite{ctx: ctx, fn: fn, done: make(chan error, 1), lead: make(chan struct{})}
	s.wmu.Lock()
	s.waiting = append(s.waiting, w)
	leader := !s.leading
	if leader {
		s.leading = true
	}
	s.wmu.Unlock()
	if !leader {
		select {
		case err := <-w.done:
			return err
		case <-w.lead:
		case <-ctx.Done():
			// A write still waiting for a batch leaves the queue: nothing
			// of it has run. One a batch has taken, or that was handed
			// the lead, sees it through.
			s.wmu.Lock()
			if i := slices.Index(s.waiting, w); i >= 0 && !isClosed(w.lead) {
				s.waiting = slices.Delete(s.waiting, i, i+1)
				s.wmu.Unlock()
				return ctx.Err()
			}
			s.wmu.Unlock()
			select {
			case err := <-w.done:
				return err
			case <-w.lead:
			}
		}
	}
	// This caller leads: it commits the batch its write is in, which is
	// the first one it takes (its write heads the queue), then hands the
	// lead on.
	s.wmu.Lock()
	n := min(len(s.waiting), maxBatch)
	batch := append([]*pendingWrite(nil), s.waiting[:n]...)
	s.waiting = append(s.waiting[:0], s.waiting[n:]...)
	s.wmu.Unlock()
	s.lead(batch)
	return <-w.done
}

// lead commits batch, then hands the lead to the first write waiting. A
// panic or runtime.Goexit on the way (a bug in the store or its driver)
// fails every write of the batch not yet answered and still hands the lead
// on, so that the writes behind it are not left waiting forever.
func (s *Store) lead(batch []*pendingWrite) {
	finished := false
	defer func() {
		v := recover()
		if !finished {
			err := fmt.Errorf("%s: a write transaction was abandoned: %v", s.d.Name, v)
			for _, w := range batch {
				select {
				case w.done <- err:
				default: // answered already
				}
			}
		}
		s.wmu.Lock()
		if len(s.waiting) > 0 {
			close(s.waiting[0].lead)
		} else {
			s.leading = false
		}
		s.wmu.Unlock()
		if v != nil {
			panic(v)
		}
	}()
	s.commitBatch(batch)
	finished = true
}

// commitBatch runs the writes of batch in one transaction and tells each
// its outcome.
func (s *Store) commitBatch(batch []*pendingWrite) {
	// Writes whose caller went away before their turn are not run.
	live := batch[:0]
	for _, w := range batch {
		if err := w.ctx.Err(); err != nil {
			w.done <- err
			continue
		}
		live = append(live, w)
	}
	if len(live) == 0 {
		return
	}
	// The statements of the batch run under a context no one caller can
	// cancel (a transaction is shared, so is its fate), but that is
	// cancelled once every caller has gone (a client that hung up, a
	// deadline): a batch stuck on a lock or a hung connection is then
	// rolled back, and all its callers are told it failed.
	ctx, cancel := context.WithCancel(context.WithoutCancel(live[0].ctx))
	defer cancel()
	var left atomic.Int64
	left.Store(int64(len(live)))
	for _, w := range live {
		stop := context.AfterFunc(w.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
		defer stop()
	}
	errs, tx, err := s.runBatch(ctx, live)
	if err == nil {
		s.writesDown.Store(false)
	} else if s.d.Unavailable != nil && s.d.Unavailable(err) != "" {
		s.writesDown.Store(true)
	}
	for i, w := range live {
		switch {
		case err != nil:
			w.done <- err
		default:
			w.done <- errs[i]
		}
	}
	if err != nil {
		return
	}
	if tx.delivered {
		s.wake()
	}
	if tx.recorded {
		// Counted before anyone is woken, so that whoever reads the
		// events finds them counted too.
		s.counts.add(tx.types)
		s.eventsCommitted()
	}
}

// runBatch runs the writes in one transaction and commits it. It returns
// each write's own error, what the committed writes did together, and an
// error that failed the whole batch (nothing of it committed).
func (s *Store) runBatch(ctx context.Context, batch []*pendingWrite) ([]error, *wtx, error) {
	t, err := s.d.BeginWrite(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: begin: %w", s.d.Name, err)
	}
	defer func() { _ = t.Rollback() }()
	all := &wtx{rebound: rebound{t, s.d.Rebind}, ctx: ctx, lastInsertID: s.d.LastInsertID}
	errs := make([]error, len(batch))
	single := len(batch) == 1
	for i, w := range batch {
		tx := &wtx{rebound: all.rebound, ctx: ctx, batch: all, lastInsertID: s.d.LastInsertID}
		if !single {
			if _, err := t.ExecContext(ctx, "SAVEPOINT w"); err != nil {
				return nil, nil, fmt.Errorf("%s: savepoint: %w", s.d.Name, err)
			}
		}
		if err := call(w.fn, tx); err != nil {
			var p *panicked
			if errors.As(err, &p) {
				// A bug: nothing of the batch is committed, every
				// caller hears of it, and the next batch runs.
				return nil, nil, fmt.Errorf("%s: %w", s.d.Name, err)
			}
			errs[i] = s.refused(err)
			if single {
				return nil, nil, errs[i]
			}
			// Undo this write alone. Should the database have given up
			// on the whole transaction (an I/O error), the batch fails.
			if _, rerr := t.ExecContext(ctx, "ROLLBACK TO SAVEPOINT w"); rerr != nil {
				// The database gave up on the transaction (SQLite does on
				// an I/O error or a full disk): the batch fails with the
				// write's database error, so that it is classified (a
				// full disk is EUNAVAILABLE). A write's own verdict (a
				// *deploydb.Error, such as a conflict) is not carried to
				// the others.
				var de *deploydb.Error
				if errors.As(err, &de) {
					return nil, nil, fmt.Errorf("%s: rollback to savepoint (after %q): %w", s.d.Name, err.Error(), rerr)
				}
				return nil, nil, fmt.Errorf("%s: rollback to savepoint: %w", s.d.Name, errors.Join(err, rerr))
			}
		}
		if !single {
			if _, err := t.ExecContext(ctx, "RELEASE SAVEPOINT w"); err != nil {
				return nil, nil, fmt.Errorf("%s: release savepoint: %w", s.d.Name, err)
			}
		}
		if errs[i] == nil {
			all.delivered = all.delivered || tx.delivered
			all.recorded = all.recorded || tx.recorded
			all.whole = all.whole || tx.whole
			for svc := range tx.services {
				all.changedService(svc)
			}
			all.types = append(all.types, tx.types...)
		}
	}
	if err := all.moveStatusVersion(ctx); err != nil {
		return nil, nil, fmt.Errorf("%s: status version: %w", s.d.Name, err)
	}
	if s.d.Announce != nil && (all.delivered || all.recorded) {
		if err := s.d.Announce(ctx, t, all.delivered, all.recorded); err != nil {
			return nil, nil, fmt.Errorf("%s: announce: %w", s.d.Name, err)
		}
	}
	if err := t.Commit(); err != nil {
		return nil, nil, fmt.Errorf("%s: commit: %w", s.d.Name, err)
	}
	return errs, all, nil
}

// isClosed reports whether ch is closed.
func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// panicked is a panic in a write's function, turned into an error so that
// the batch fails as a whole and the writes waiting behind it go on.
type panicked struct {
	value any
	stack []byte
}

func (p *panicked) Error() string { return fmt.Sprintf("a write panicked: %v\n%s", p.value, p.stack) }

// call runs fn, turning a panic into a *panicked error.
func call(fn func(tx *wtx) error, tx *wtx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicked{value: v, stack: debug.Stack()}
		}
	}()
	return fn(tx)
}

// refused is the error of a write's function: a schema constraint that
// refused what the code let through (one active deployment per service
// and environment) is a conflict.
func (s *Store) refused(err error) error {
	var de *deploydb.Error
	if !errors.As(err, &de) && s.isUnique(err) {
		return deploydb.Errorf(deploydb.ECONFLICT, "the database refused the change: %v", err)
	}
	return err
}

// snapshot runs reads that take several queries in one read transaction, so
// that they see one committed state, never a write half applied between two
// of the queries.
func (s *Store) snapshot(ctx context.Context, fn func(q querier) error) error {
	tx, err := s.d.BeginSnapshot(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin read: %w", s.d.Name, err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(rebound{tx, s.d.Rebind})
}

// Committed wakes the dispatcher (deliveries) and the live views (events)
// of this process for a commit another process on the database announced.
func (s *Store) Committed(deliveries, events bool) {
	if deliveries {
		s.wake()
	}
	if events {
		s.eventsCommitted()
	}
}

func (s *Store) wake() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// classify turns *err, returned by a public method, into EUNAVAILABLE when
// the Driver says the database cannot serve now: the caller may try again
// once it is back, and nothing is lost meanwhile (a write either committed
// or did not). The driver's error stays in the chain, for the logs. An
// error of the caller's context (a client that went away) is left as it
// is.
func (s *Store) classify(err *error) {
	if *err == nil || s.d.Unavailable == nil {
		return
	}
	var de *deploydb.Error
	if errors.As(*err, &de) || errors.Is(*err, context.Canceled) || errors.Is(*err, context.DeadlineExceeded) {
		return
	}
	if why := s.d.Unavailable(*err); why != "" {
		*err = fmt.Errorf("%w: %w", deploydb.Errorf(deploydb.EUNAVAILABLE, "%s is unavailable: %s; try again later", s.shown(), why), *err)
	}
}

// shown names the database in messages.
func (s *Store) shown() string {
	if s.d.Shown != "" {
		return s.d.Shown
	}
	return "the database"
}

func (s *Store) isUnique(err error) bool { return err != nil && s.d.IsUnique(err) }

func ms(t deploydb.Time) int64 { return t.UnixMilli() }

// querier is what reads need from a database or a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// execer is a *sql.DB or a *sql.Tx.
type execer interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// rebound runs queries written with ? placeholders on c, rebound for its
// database.
type rebound struct {
	c      execer
	rebind func(string) string
}

// QueryContext runs a query with ? placeholders.
func (r rebound) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return r.c.QueryContext(ctx, r.rebind(query), args...)
}

// QueryRowContext runs a query with ? placeholders.
func (r rebound) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return r.c.QueryRowContext(ctx, r.rebind(query), args...)
}

// ExecContext runs a statement with ? placeholders.
func (r rebound) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return r.c.ExecContext(ctx, r.rebind(query), args...)
}
