package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/deploydb/deploydb"
)

// statusCache keeps the status matrix the API built last, each row already
// encoded, for as long as the store's StatusVersion and the configuration
// stay what they were when it was built. Building it reads every cell and
// the deployments they name (tens of milliseconds at 1,000 services × 20
// environments); serving it from here costs one read of the version.
// Which environments are frozen depends on the time, so the columns are
// built for each request.
type statusCache struct {
	// mu is held while the matrix is built, so that requests arriving
	// meanwhile wait for it and share it rather than each building one.
	mu    sync.Mutex
	built *builtMatrix
}

// builtMatrix is the status matrix of one configuration at one
// StatusVersion.
type builtMatrix struct {
	cfg     *deploydb.Config
	version int64
	locks   map[string]*deploydb.Lock
	rows    []StatusService
	encoded [][]byte // rows[i] as JSON
}

// statusMatrix returns the matrix as of now: the kept one when nothing
// changed since it was built, a new one otherwise.
func (s *Server) statusMatrix(ctx context.Context) (*builtMatrix, error) {
	cfg := s.config()
	// The version is read before the matrix: a commit between the two
	// leaves a matrix newer than its version says, which the next request
	// finds out of date and builds again. Never the other way round.
	version, err := s.store.StatusVersion(ctx)
	if err != nil {
		return nil, err
	}
	c := &s.matrix
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.built; b != nil && b.cfg == cfg && b.version == version {
		return b, nil
	}
	b, err := buildMatrix(ctx, s.store, cfg, version)
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
	kept := make(map[[2]string]*deploydb.StatusCell, len(cells))
	for _, c := range cells {
		kept[[2]string{c.Service, c.Environment}] = c
	}
	b := &builtMatrix{cfg: cfg, version: version, locks: locks, rows: make([]StatusService, 0, len(cfg.Services))}
	for _, svc := range sorted(cfg.Services) {
		row := StatusService{Service: svc.Ident, Pipeline: svc.Pipeline(), Cells: []StatusCell{}}
		if pl := cfg.Pipelines[svc.Pipeline()]; pl != nil {
			for _, st := range pl.Environments {
				cell := StatusCell{Environment: st.Environment, Locked: locks[st.Environment] != nil}
				if c := kept[[2]string{svc.Ident, st.Environment}]; c != nil {
					cell.Current, cell.CurrentSince = cellDeployment(c.Current), c.CurrentSince
					cell.InFlight, cell.LastAttempt, cell.LastKnownGood = cellDeployment(c.InFlight), cellDeployment(c.LastAttempt), cellDeployment(c.LastGood)
				}
				row.Cells = append(row.Cells, cell)
			}
		}
		enc, err := json.Marshal(row)
		if err != nil {
			return nil, fmt.Errorf("status: encode %s: %w", svc.Ident, err)
		}
		b.rows = append(b.rows, row)
		b.encoded = append(b.encoded, enc)
	}
	return b, nil
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
func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	b, err := s.statusMatrix(r.Context())
	if err != nil {
		return err
	}
	cols, err := json.Marshal(s.columns(r, b))
	if err != nil {
		return fmt.Errorf("status: encode environments: %w", err)
	}
	only := r.URL.Query().Get("service")
	rows := make([][]byte, 0, len(b.encoded))
	size := len(`{"environments":`) + len(cols) + len(`,"services":[`) + len("]}\n")
	for i, enc := range b.encoded {
		if only == "" || strings.Contains(b.rows[i].Service, only) {
			rows = append(rows, enc)
			size += len(enc)
		}
	}
	size += max(len(rows)-1, 0) // commas
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	// Written as it is, row by row: no copy of the whole matrix per
	// request. A bufio.Writer keeps its first error and writes nothing
	// after it; a client that went away is nobody to tell.
	bw := bufio.NewWriterSize(w, 32<<10)
	_, _ = bw.WriteString(`{"environments":`)
	_, _ = bw.Write(cols)
	_, _ = bw.WriteString(`,"services":[`)
	for i, enc := range rows {
		if i > 0 {
			_ = bw.WriteByte(',')
		}
		_, _ = bw.Write(enc)
	}
	_, _ = bw.WriteString("]}\n")
	_ = bw.Flush()
	return nil
}
