package config

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deploydb/deploydb"
)

// Holder holds the configuration a server has in force and reloads it from
// the same directory with the same options. A configuration that does not
// load never replaces the one in force: it is refused with every problem
// named, and the old one keeps serving.
//
// A Holder is safe for concurrent use: Current never blocks, and reloads
// run one at a time.
type Holder struct {
	dir    string
	opts   HolderOptions
	mu     sync.Mutex // serialises Reload
	state  atomic.Pointer[holderState]
	logger *slog.Logger
}

// HolderOptions tunes NewHolder.
type HolderOptions struct {
	// Options are those of every load.
	Options
	// Logger receives one line per reload: what was loaded, or why it was
	// refused. Nil logs nothing.
	Logger *slog.Logger
	// Now returns the current time, for the load times the Holder records.
	// Nil means time.Now.
	Now func() time.Time
}

// holderState is one immutable state of a Holder, replaced whole.
type holderState struct {
	cfg         *deploydb.Config
	loadedAt    time.Time
	lastError   string
	lastAttempt time.Time
	// reloaded and refused count the reloads that put a configuration in
	// force and those that were refused.
	reloaded, refused int64
	// changed is closed when cfg is replaced.
	changed chan struct{}
}

// NewHolder loads the configuration directory dir and returns a Holder of
// it. It returns the error of LoadWith (an *Error listing every problem)
// when dir does not load.
func NewHolder(dir string, opts HolderOptions) (*Holder, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Holder{dir: dir, opts: opts, logger: opts.Logger}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	at := opts.Now()
	cfg, err := LoadWith(dir, opts.Options)
	if err != nil {
		return nil, err
	}
	h.state.Store(&holderState{cfg: cfg, loadedAt: at, lastAttempt: at, changed: make(chan struct{})})
	return h, nil
}

// Current returns the configuration in force. Callers keep using the one
// they got for the whole of an operation, so that it sees one
// configuration.
func (h *Holder) Current() *deploydb.Config { return h.state.Load().cfg }

// Changed returns a channel that is closed when a reload replaces the
// configuration Current returns now: a loop that depends on the
// configuration (a timer set by freeze windows, say) selects on it to start
// over with the new one.
func (h *Holder) Changed() <-chan struct{} { return h.state.Load().changed }

// Reload loads the configuration directory again and, when it loads, puts
// it in force and returns it. When it does not, the configuration in force
// stays, the problems are recorded for Status, and the error of LoadWith
// (an *Error listing every problem, unwrapping to a deploydb EINVALID
// error) is returned. Either way the outcome is logged.
func (h *Holder) Reload() (*deploydb.Config, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.state.Load()
	next := *old
	next.lastAttempt = h.opts.Now()
	cfg, err := LoadWith(h.dir, h.opts.Options)
	if err != nil {
		next.lastError = errorText(err)
		next.refused++
		h.state.Store(&next)
		h.logger.Warn("config reload refused; the previous config keeps serving",
			"dir", old.cfg.Dir, "checksum", old.cfg.Checksum, "problems", strings.ReplaceAll(next.lastError, "\n", "; "))
		return nil, err
	}
	next.cfg, next.loadedAt, next.lastError = cfg, next.lastAttempt, ""
	next.reloaded++
	next.changed = make(chan struct{})
	h.state.Store(&next)
	close(old.changed)
	h.logger.Info("config reloaded", "dir", cfg.Dir, "checksum", cfg.Checksum, "previous", old.cfg.Checksum,
		"changed", cfg.Checksum != old.cfg.Checksum, "files", len(cfg.Files))
	return cfg, nil
}

// Status describes the configuration in force and the last attempt to
// reload it.
func (h *Holder) Status() deploydb.ConfigStatus {
	s := h.state.Load()
	files := make([]deploydb.ConfigFile, len(s.cfg.Files))
	copy(files, s.cfg.Files)
	return deploydb.ConfigStatus{
		Checksum:      s.cfg.Checksum,
		Dir:           s.cfg.Dir,
		Files:         files,
		LoadedAt:      deploydb.NewTime(s.loadedAt),
		LastError:     s.lastError,
		LastAttemptAt: deploydb.NewTime(s.lastAttempt),
	}
}

// Reloads returns how many reloads put a configuration in force (ok, even
// one unchanged) and how many were refused (failed) since the Holder was
// made; the first load is neither. Status().LoadedAt is when the
// configuration in force was loaded.
func (h *Holder) Reloads() (ok, failed int64) {
	s := h.state.Load()
	return s.reloaded, s.refused
}

// errorText renders a load error as a summary line, then one line per
// problem.
func errorText(err error) string {
	var cerr *Error
	if errors.As(err, &cerr) {
		return deploydb.ErrorMessage(err) + "\n" + cerr.Error()
	}
	return err.Error()
}
