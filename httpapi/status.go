package httpapi

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deploydb/deploydb"
)

// statusCache keeps the status matrix the API built last, each row already
// encoded, and brings it up to date from what the store says changed since
// (StatusChanges): the rows of the services a commit changed are read and
// encoded again, the rest are kept. Building it whole reads every cell and
// the deployments they name (tens of milliseconds at 1,000 services × 20
// environments); a request after no change costs one small read, after a
// change to a few services a read of theirs. Which environments are frozen
// depends on the time, so the columns are built for each request.
type statusCache struct {
	// mu is held while the matrix is brought up to date, so that requests
	// arriving meanwhile wait for it and share it rather than each doing
	// the same.
	mu    sync.Mutex
	built *builtMatrix
}

// builtMatrix is the status matrix of one configuration at one version of
// the store's. It is never changed once built: an update makes a new one.
type builtMatrix struct {
	cfg     *deploydb.Config
	version int64
	locks   map[string]*deploydb.Lock
	rows    []StatusService
	encoded [][]byte            // rows[i] as JSON
	sums    [][sha256.Size]byte // the SHA-256 of encoded[i], for the ETag
	index   map[string]int      // service -> its row
	// all is every row, comma-separated: the body of an unfiltered
	// request in one piece, made by the first request that needs it;
	// allSum is the SHA-256 of the rows' sums.
	allOnce sync.Once
	all     []byte
	allSum  [sha256.Size]byte
}

// allRows returns every row, comma-separated.
func (b *builtMatrix) allRows() []byte {
	b.allOnce.Do(func() {
		n := len(b.encoded)
		for _, enc := range b.encoded {
			n += len(enc)
		}
		all := make([]byte, 0, n)
		for i, enc := range b.encoded {
			if i > 0 {
				all = append(all, ',')
			}
			all = append(all, enc...)
		}
		b.all = all
		b.allSum = sumOf(b.sums)
	})
	return b.all
}

// sumOf returns the SHA-256 of the rows' sums, in order.
func sumOf(sums [][sha256.Size]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, s := range sums {
		h.Write(s[:])
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// statusMatrix returns the matrix as of now: the kept one when nothing
// changed since it was built, one brought up to date otherwise.
func (s *Server) statusMatrix(ctx context.Context) (*builtMatrix, error) {
	cfg := s.config()
	c := &s.matrix
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.built
	if b != nil && b.cfg != cfg {
		b = nil // a reload: built again, whatever changed
	}
	since := int64(-1) // nothing built: all of it
	if b != nil {
		since = b.version
	}
	// The changes are read before the cells: a commit between the two
	// leaves rows newer than the version says, which the next request
	// reads again. Never the other way round.
	ch, err := s.store.StatusChanges(ctx, since)
	if err != nil {
		return nil, err
	}
	switch {
	case b != nil && !ch.All && len(ch.Services) == 0:
		return b, nil
	case b != nil && !ch.All:
		b, err = b.update(ctx, s.store, ch)
	default:
		b, err = buildMatrix(ctx, s.store, cfg, ch.Version)
	}
	if err != nil {
		return nil, err
	}
	c.built = b
	return b, nil
}

// buildMatrix reads the status matrix and the locks and encodes each row.
func buildMatrix(ctx context.Context, store deploydb.Store, cfg *deploydb.Config, version int64) (*builtMatrix, error) {
	cells, err := store.FindStatus(ctx)
	if err != nil {
		return nil, err
	}
	locks, err := store.FindLocks(ctx)
	if err != nil {
		return nil, err
	}
	kept := cellsByKey(cells)
	b := &builtMatrix{cfg: cfg, version: version, locks: locks, index: make(map[string]int, len(cfg.Services))}
	for _, svc := range sorted(cfg.Services) {
		row, enc, err := b.row(svc, kept)
		if err != nil {
			return nil, err
		}
		b.index[svc.Ident] = len(b.rows)
		b.rows = append(b.rows, row)
		b.encoded = append(b.encoded, enc)
		b.sums = append(b.sums, sha256.Sum256(enc))
	}
	return b, nil
}

// update returns a copy of b with the rows of the services ch names read
// again: only rows change, so the locks are those b has.
func (b *builtMatrix) update(ctx context.Context, store deploydb.Store, ch deploydb.StatusChanges) (*builtMatrix, error) {
	cells, err := store.FindStatus(ctx, ch.Services...)
	if err != nil {
		return nil, err
	}
	kept := cellsByKey(cells)
	nb := &builtMatrix{cfg: b.cfg, version: ch.Version, locks: b.locks, rows: slices.Clone(b.rows), encoded: slices.Clone(b.encoded), sums: slices.Clone(b.sums), index: b.index}
	for _, name := range ch.Services {
		i, ok := b.index[name]
		if !ok {
			continue // no longer configured
		}
		row, enc, err := nb.row(b.cfg.Services[name], kept)
		if err != nil {
			return nil, err
		}
		nb.rows[i], nb.encoded[i], nb.sums[i] = row, enc, sha256.Sum256(enc)
	}
	return nb, nil
}

func cellsByKey(cells []*deploydb.StatusCell) map[[2]string]*deploydb.StatusCell {
	kept := make(map[[2]string]*deploydb.StatusCell, len(cells))
	for _, c := range cells {
		kept[[2]string{c.Service, c.Environment}] = c
	}
	return kept
}

// row builds svc's row from the cells kept and encodes it.
func (b *builtMatrix) row(svc *deploydb.Service, kept map[[2]string]*deploydb.StatusCell) (StatusService, []byte, error) {
	row := StatusService{Service: svc.Ident, Pipeline: svc.Pipeline(), Cells: []StatusCell{}}
	if pl := b.cfg.Pipelines[svc.Pipeline()]; pl != nil {
		for _, st := range pl.Environments {
			cell := StatusCell{Environment: st.Environment, Locked: b.locks[st.Environment] != nil}
			if c := kept[[2]string{svc.Ident, st.Environment}]; c != nil {
				cell.Current, cell.CurrentSince = cellDeployment(c.Current), c.CurrentSince
				cell.InFlight, cell.LastAttempt, cell.LastKnownGood = cellDeployment(c.InFlight), cellDeployment(c.LastAttempt), cellDeployment(c.LastGood)
			}
			row.Cells = append(row.Cells, cell)
		}
	}
	enc, err := json.Marshal(row)
	if err != nil {
		return row, nil, fmt.Errorf("status: encode %s: %w", svc.Ident, err)
	}
	return row, enc, nil
}

// columns returns the matrix's environments as of now, in pipeline order.
func (s *Server) columns(r *http.Request, b *builtMatrix) []StatusEnvironment {
	out := []StatusEnvironment{}
	for _, name := range environmentOrder(b.cfg) {
		col := StatusEnvironment{Name: name, Lock: b.locks[name]}
		if e := b.cfg.Environments[name]; e != nil {
			col.Frozen = s.environmentView(r, e, b.locks).Frozen
		}
		out = append(out, col)
	}
	return out
}

// status answers GET /api/status: the bytes are those json.Encoder
// writes for the whole Status, put together from the rows encoded once.
//
// Its ETag is a digest of those bytes (of the columns, and of the digest
// of each row, kept with it), so two servers on one database give the
// same matrix the same tag, and a poller that sends it back in
// If-None-Match gets 304 Not Modified, without the body, until it
// changes.
func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	if v := r.URL.Query().Get("at"); v != "" {
		at, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return badParam("at", fmt.Sprintf("must be an RFC 3339 time, not %q", v))
		}
		if at.After(s.now()) {
			return badParam("at", "is in the future: the matrix of now has no at")
		}
		st, err := s.statusAt(r, deploydb.NewTime(at))
		if err != nil {
			return err
		}
		body, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("status: encode: %w", err)
		}
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		w.Header().Set("ETag", etag)
		if notModified(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(append(body, '\n'))
		return nil
	}
	b, err := s.statusMatrix(r.Context())
	if err != nil {
		return err
	}
	cols, err := json.Marshal(s.columns(r, b))
	if err != nil {
		return fmt.Errorf("status: encode environments: %w", err)
	}
	only := r.URL.Query().Get("service")
	var body []byte
	var rowsSum [sha256.Size]byte
	if only == "" {
		body = b.allRows() // makes allSum
		rowsSum = b.allSum
	} else {
		var sums [][sha256.Size]byte
		for i, enc := range b.encoded {
			if strings.Contains(b.rows[i].Service, only) {
				if len(body) > 0 {
					body = append(body, ',')
				}
				body = append(body, enc...)
				sums = append(sums, b.sums[i])
			}
		}
		rowsSum = sumOf(sums)
	}
	h := sha256.New()
	h.Write(cols)
	h.Write(rowsSum[:])
	etag := `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
	w.Header().Set("ETag", etag)
	if notModified(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	head := make([]byte, 0, len(cols)+32)
	head = append(head, `{"environments":`...)
	head = append(head, cols...)
	head = append(head, `,"services":[`...)
	const tail = "]}\n"
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(len(head)+len(body)+len(tail)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	// Three writes: the rows go out in one piece, as kept, not copied
	// row by row. A client that went away is nobody to tell.
	if _, err := w.Write(head); err == nil {
		if _, err := w.Write(body); err == nil {
			_, _ = io.WriteString(w, tail)
		}
	}
	return nil
}

// notModified reports whether an If-None-Match header value names etag,
// or is "*" (RFC 9110 §13.1.2: for GET the weak comparison, so a W/ tag
// matches too).
func notModified(header, etag string) bool {
	for tag := range strings.SplitSeq(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
			return true
		}
	}
	return false
}

// statusAt builds the matrix as it was at instant at, from the history:
// the cells (FindStatusAt), the locks then (from the lock events), and the
// freezes of the configuration in force now.
func (s *Server) statusAt(r *http.Request, at deploydb.Time) (*Status, error) {
	ctx := r.Context()
	cfg := s.config()
	var only []string
	if q := r.URL.Query().Get("service"); q != "" {
		for name := range cfg.Services {
			if strings.Contains(name, q) {
				only = append(only, name)
			}
		}
		if len(only) == 0 {
			return &Status{Environments: s.columnsAt(cfg, nil, at), Services: []StatusService{}, At: &at}, nil
		}
	}
	var cells []*deploydb.StatusCell
	for chunk := range slices.Chunk(only, deploydb.MaxStatusServices) {
		cs, err := s.store.FindStatusAt(ctx, deploydb.StatusAtFilter{At: at.Time, Services: chunk})
		if err != nil {
			return nil, err
		}
		cells = append(cells, cs...)
	}
	if only == nil {
		var err error
		if cells, err = s.store.FindStatusAt(ctx, deploydb.StatusAtFilter{At: at.Time}); err != nil {
			return nil, err
		}
	}
	locks, err := locksAt(ctx, s.store, at.Time)
	if err != nil {
		return nil, err
	}
	b := &builtMatrix{cfg: cfg, locks: locks}
	kept := cellsByKey(cells)
	st := &Status{Environments: s.columnsAt(cfg, locks, at), Services: []StatusService{}, At: &at}
	for _, svc := range sorted(cfg.Services) {
		if only != nil && !slices.Contains(only, svc.Ident) {
			continue
		}
		row, _, err := b.row(svc, kept)
		if err != nil {
			return nil, err
		}
		st.Services = append(st.Services, row)
	}
	return st, nil
}

// columnsAt returns the matrix's environments with the locks and freezes
// in force at at.
func (s *Server) columnsAt(cfg *deploydb.Config, locks map[string]*deploydb.Lock, at deploydb.Time) []StatusEnvironment {
	out := []StatusEnvironment{}
	for _, name := range environmentOrder(cfg) {
		col := StatusEnvironment{Name: name, Lock: locks[name]}
		if e := cfg.Environments[name]; e != nil {
			if frozen, why, _ := e.FrozenAt(at.Time); frozen {
				col.Frozen = why
			}
		}
		out = append(out, col)
	}
	return out
}

// locksAt returns the locks in force at instant at, from the
// environment.locked and .unlocked events recorded by then.
func locksAt(ctx context.Context, store deploydb.Store, at time.Time) (map[string]*deploydb.Lock, error) {
	var evs []*deploydb.Event
	for _, t := range []deploydb.EventType{deploydb.EventEnvironmentLocked, deploydb.EventEnvironmentUnlocked} {
		after := int64(0)
		for {
			page, err := store.FindEvents(ctx, deploydb.EventFilter{After: after, Type: t, Limit: deploydb.MaxPageSize})
			if err != nil {
				return nil, err
			}
			for _, ev := range page {
				if !ev.CreatedAt.After(at) {
					evs = append(evs, ev)
				}
			}
			if len(page) < deploydb.MaxPageSize {
				break
			}
			after = page[len(page)-1].ID
		}
	}
	slices.SortFunc(evs, func(a, b *deploydb.Event) int { return cmp.Compare(a.ID, b.ID) })
	locks := map[string]*deploydb.Lock{}
	for _, ev := range evs {
		if ev.Type == deploydb.EventEnvironmentLocked {
			locks[ev.Environment] = &deploydb.Lock{Environment: ev.Environment, Reason: ev.Reason, Actor: ev.Actor, CreatedAt: ev.CreatedAt}
		} else {
			delete(locks, ev.Environment)
		}
	}
	return locks, nil
}
