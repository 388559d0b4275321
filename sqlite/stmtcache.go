package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"modernc.org/sqlite"
)

// stmtCacheSize bounds the prepared statements each connection keeps. The
// store runs a few dozen distinct statements; the ones it builds (a list
// of ids, a filter, a page) vary more, and the least recently used of them
// make room.
const stmtCacheSize = 128

// cachingConnector opens the driver's connections, each with a cache of
// the statements run on it.
//
// database/sql prepares a statement afresh for every query or exec on a
// connection (the driver implements QueryerContext and ExecerContext),
// and SQLite's parser and code generator cost more than running the
// statement: they were a third of the CPU of a write. A connection's cache
// keeps, by SQL text, the statements prepared on it and runs them again
// (bind, step, reset). A statement SQLite prepared keeps working across
// schema changes: SQLite prepares it again when the schema it was prepared
// against changed (sqlite3_prepare_v2).
type cachingConnector struct {
	driver.Connector
	size int
}

// newCachingConnector returns a connector to the database dsn names whose
// connections cache up to size statements each.
func newCachingConnector(dsn string, size int) (driver.Connector, error) {
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return cachingConnector{Connector: c, size: size}, nil
}

// Connect opens a connection with an empty statement cache.
func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	in, ok := dc.(innerConn)
	if !ok {
		_ = dc.Close()
		return nil, fmt.Errorf("sqlite: the driver's connection (%T) lacks an interface the statement cache forwards", dc)
	}
	return &cachingConn{innerConn: in, size: c.size, stmts: map[string]*cachedStmt{}}, nil
}

// innerConn is what every connection of the driver implements and a
// wrapper must forward (sqlite.NewConnector says which).
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// cachedStmt is a statement prepared on a connection, in the connection's
// list of statements from the most to the least recently used.
type cachedStmt struct {
	query      string
	st         cachedDriverStmt
	busy       bool // running, or its rows are open: it cannot run again until they close
	evicted    bool // out of the cache: closed once it is not busy
	prev, next *cachedStmt
}

// cachedDriverStmt is what the driver's statements implement.
type cachedDriverStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// cachingConn is a connection of the driver with a bounded cache of the
// statements run on it, least recently used out first. database/sql uses a
// connection from one goroutine at a time; mu still guards the cache, as
// rows may be closed from another goroutine (a context that ends).
type cachingConn struct {
	innerConn
	size int

	mu         sync.Mutex
	stmts      map[string]*cachedStmt
	head, tail *cachedStmt // the most and the least recently used
}

// Unwrap returns the driver's connection (sqlite.Limit and the like look
// through a wrapper this way).
func (c *cachingConn) Unwrap() driver.Conn { return c.innerConn }

// ExecContext runs query with the statement prepared for it on this
// connection, preparing it the first time.
func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.innerConn.ExecContext(ctx, query, args)
	}
	defer c.release(s)
	return s.st.ExecContext(ctx, args)
}

// QueryContext runs query with the statement prepared for it on this
// connection, preparing it the first time. The statement is busy until
// the rows close.
func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.innerConn.QueryContext(ctx, query, args)
	}
	r, err := s.st.QueryContext(ctx, args)
	if err != nil {
		c.release(s)
		return nil, err
	}
	return &cachedRows{Rows: r, c: c, s: s}, nil
}

// take returns the cached statement of query, marked busy, preparing and
// caching it if there is none. It returns nil when that statement is busy
// (the same query run again while the rows of its last run are open): the
// caller then runs the query without the cache.
func (c *cachingConn) take(ctx context.Context, query string) (*cachedStmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil, nil
		}
		c.unlink(s)
		c.push(s)
		s.busy = true
		return s, nil
	}
	ds, err := c.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	st, ok := ds.(cachedDriverStmt)
	if !ok {
		_ = ds.Close()
		return nil, errors.New("sqlite: the driver's statement lacks ExecContext or QueryContext")
	}
	s := &cachedStmt{query: query, st: st, busy: true}
	c.stmts[query] = s
	c.push(s)
	for len(c.stmts) > c.size {
		old := c.tail
		c.unlink(old)
		delete(c.stmts, old.query)
		old.evicted = true
		if !old.busy {
			_ = old.st.Close()
		}
	}
	return s, nil
}

// release marks s idle again, and closes it if it left the cache
// meanwhile.
func (c *cachingConn) release(s *cachedStmt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.busy = false
	if s.evicted {
		_ = s.st.Close()
	}
}

// push puts s at the head of the list: the most recently used.
func (c *cachingConn) push(s *cachedStmt) {
	s.prev, s.next = nil, c.head
	if c.head != nil {
		c.head.prev = s
	}
	c.head = s
	if c.tail == nil {
		c.tail = s
	}
}

// unlink takes s out of the list.
func (c *cachingConn) unlink(s *cachedStmt) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		c.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		c.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

// Close closes the cached statements, then the connection.
func (c *cachingConn) Close() error {
	c.mu.Lock()
	var errs []error
	for q, s := range c.stmts {
		delete(c.stmts, q)
		s.evicted = true
		if !s.busy {
			errs = append(errs, s.st.Close())
		}
	}
	c.head, c.tail = nil, nil
	c.mu.Unlock()
	return errors.Join(append(errs, c.innerConn.Close())...)
}

// cachedRows are the rows of a cached statement: closing them makes the
// statement idle again.
type cachedRows struct {
	driver.Rows
	c    *cachingConn
	s    *cachedStmt
	once sync.Once
}

// Close closes the rows and releases their statement.
func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(func() { r.c.release(r.s) })
	return err
}

// ColumnTypeDatabaseTypeName forwards to the driver's rows.
func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

// ColumnTypeLength forwards to the driver's rows.
func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

// ColumnTypeNullable forwards to the driver's rows.
func (r *cachedRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

// ColumnTypePrecisionScale forwards to the driver's rows.
func (r *cachedRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

// ColumnTypeScanType forwards to the driver's rows.
func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}
