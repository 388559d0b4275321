package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/deploydb/deploydb"
)

// Reloader reloads the configuration directory and describes the
// configuration in force; *config.Holder is one.
type Reloader interface {
	// Reload loads the configuration directory again and puts it in force.
	// When it does not load it returns an error that unwraps to an EINVALID
	// *deploydb.Error whose Fields name every problem, and the
	// configuration in force stays.
	Reload() (*deploydb.Config, error)
	// Status describes the configuration in force and the last attempt to
	// reload it.
	Status() deploydb.ConfigStatus
}

// WithReloader makes the server reload its configuration with r on
// POST /api/config/reload, and show r's Status on GET /api/config. Call it
// before the server serves its first request.
func (s *Server) WithReloader(r Reloader) *Server {
	s.reloader = r
	return s
}

// configRoutes are the routes of the configuration in force and its reload.
var configRoutes = []route{
	{Method: "GET", Path: "/api/config", Scope: deploydb.ScopeRead, Summary: "The configuration in force: its checksum and files, when it was loaded, and the last reload attempt (never a configuration value)", Handle: (*Server).getConfigStatus,
		Response: deploydb.ConfigStatus{}, Status: 200},
	{Method: "POST", Path: "/api/config/reload", Scope: deploydb.ScopeAdmin, Summary: "Reload the configuration directory; a broken one is refused with every problem named (422) and the configuration in force keeps serving", Handle: (*Server).reloadConfig,
		Response: deploydb.ConfigStatus{}, Status: 200, Errors: []int{422}},
}

// configStatus returns the status of the configuration in force: the
// reloader's, or without one what the config itself tells.
func (s *Server) configStatus() deploydb.ConfigStatus {
	if s.reloader != nil {
		return s.reloader.Status()
	}
	cfg := s.config()
	files := cfg.Files
	if files == nil {
		files = []deploydb.ConfigFile{}
	}
	return deploydb.ConfigStatus{Checksum: cfg.Checksum, Dir: cfg.Dir, Files: files}
}

func (s *Server) getConfigStatus(w http.ResponseWriter, r *http.Request) error {
	encode(w, http.StatusOK, s.configStatus())
	return nil
}

func (s *Server) reloadConfig(w http.ResponseWriter, r *http.Request) error {
	if s.reloader == nil {
		return deploydb.Errorf(deploydb.EUNAVAILABLE, "this server cannot reload its configuration: restart it instead")
	}
	// Reloads change who may do what: say who asked.
	s.log(r).Info("config reload requested", "actor", actor(r))
	if _, err := s.reloader.Reload(); err != nil {
		var e *deploydb.Error
		if !errors.As(err, &e) || e.Code != deploydb.EINVALID {
			return err
		}
		st := s.reloader.Status()
		return &deploydb.Error{
			Code:    deploydb.EINVALID,
			Message: fmt.Sprintf("configuration not reloaded: %s; the configuration loaded at %s (checksum %s) keeps serving", e.Message, st.LoadedAt.UTC().Format(deploydb.TimeFormat), st.Checksum),
			Fields:  e.Fields,
			Current: st,
		}
	}
	encode(w, http.StatusOK, s.reloader.Status())
	return nil
}
