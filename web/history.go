package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/deploydb/deploydb"
)

// historyRows is how many deployments a service's or an environment's
// page shows, newest first.
const historyRows = 200

// serviceView is the data of a service's page.
type serviceView struct {
	Service     *deploydb.Service
	Row         *matrixRow
	Deployments []*deploydb.Deployment
	More        bool
}

// service renders /services/{name}: the service's timeline across its
// environments, newest first.
func (u *UI) service(r *http.Request) (string, view, error) {
	name := r.PathValue("name")
	svc := u.config().Services[name]
	if svc == nil {
		return "", view{}, deploydb.Errorf(deploydb.ENOTFOUND, "no service %q in the configuration", name)
	}
	ctx, cancel := withTimeout(r)
	defer cancel()
	m, err := u.api.Matrix(ctx, r)
	if err != nil {
		return "", view{}, err
	}
	ds, err := u.store.FindDeployments(ctx, deploydb.DeploymentFilter{Service: name, Page: deploydb.Page{Size: historyRows + 1}})
	if err != nil {
		return "", view{}, err
	}
	v := serviceView{Service: svc, Deployments: ds}
	if len(ds) > historyRows {
		v.Deployments, v.More = ds[:historyRows], true
	}
	for _, s := range m.Services {
		if s.Service == name {
			row := rowOf(m.Environments, s)
			v.Row = &row
		}
	}
	return "service", view{Title: name, Nav: "status", Stream: "service=" + url.QueryEscape(name), Data: struct {
		serviceView
		Environments []deploydb.MatrixEnvironment
	}{v, m.Environments}}, nil
}

// flow renders /flows/{id}: one artifact's progress through its pipeline.
func (u *UI) flow(r *http.Request) (string, view, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return "", view{}, deploydb.Errorf(deploydb.ENOTFOUND, "no flow %q: a flow's id is a positive number", r.PathValue("id"))
	}
	ctx, cancel := withTimeout(r)
	defer cancel()
	f, err := u.store.FindFlow(ctx, id)
	if err != nil {
		return "", view{}, err
	}
	return "flow", view{Title: "Flow " + strconv.FormatInt(id, 10) + ": " + f.Service + " " + f.Artifact.Version, Nav: "status", Stream: "service=" + url.QueryEscape(f.Service), Data: f}, nil
}

// environmentPage is the data of an environment's page.
type environmentPage struct {
	Environment *deploydb.Environment
	Column      deploydb.MatrixEnvironment
	// Running lists what runs there, by service.
	Running     []runningView
	Deployments []*deploydb.Deployment
	More        bool
}

type runningView struct {
	Service string
	Cell    cellView
}

// environment renders /environments/{name}: what runs there now, its lock
// or freeze, and its history.
func (u *UI) environment(r *http.Request) (string, view, error) {
	name := r.PathValue("name")
	env := u.config().Environments[name]
	if env == nil {
		return "", view{}, deploydb.Errorf(deploydb.ENOTFOUND, "no environment %q in the configuration", name)
	}
	ctx, cancel := withTimeout(r)
	defer cancel()
	m, err := u.api.Matrix(ctx, r)
	if err != nil {
		return "", view{}, err
	}
	v := environmentPage{Environment: env}
	for _, e := range m.Environments {
		if e.Name == name {
			v.Column = e
		}
	}
	for _, s := range m.Services {
		if c := s.Cell(name); c != nil {
			v.Running = append(v.Running, runningView{Service: s.Service, Cell: cellOf(*c)})
		}
	}
	ds, err := u.store.FindDeployments(ctx, deploydb.DeploymentFilter{Environment: name, Page: deploydb.Page{Size: historyRows + 1}})
	if err != nil {
		return "", view{}, err
	}
	v.Deployments = ds
	if len(ds) > historyRows {
		v.Deployments, v.More = ds[:historyRows], true
	}
	return "environment", view{Title: name, Nav: "status", Stream: "environment=" + url.QueryEscape(name), Data: v}, nil
}
