package postgres

import (
	"sync"
	"sync/atomic"
)

// rebindCacheSize bounds the queries a rebinder remembers. The store runs
// a few dozen distinct queries; those it builds (a list of ids, a filter,
// a page) vary more.
const rebindCacheSize = 1024

// rebinder remembers the queries it rebound: each write runs some twenty
// statements, each rebound from the same text every time. (pgx keeps each
// connection's prepared statements itself, by the rebound text.) When it
// holds size queries, it forgets them all and starts again: the ones in
// use come back at their next run.
type rebinder struct {
	size    int64
	n       atomic.Int64
	queries sync.Map // query with ? → query with $n
}

// rebind returns query with its placeholders numbered (rebind).
func (r *rebinder) rebind(query string) string {
	if q, ok := r.queries.Load(query); ok {
		return q.(string)
	}
	q := rebind(query)
	if r.n.Add(1) > r.size {
		r.queries.Clear()
		r.n.Store(1)
	}
	r.queries.Store(query, q)
	return q
}
