package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"

	"github.com/deploydb/deploydb"
)

// verifyHistory reads back through the API of the server c calls what the
// generator says it wrote (man): a few flows as GET /api/flows/{id} shows
// them, each of their deployments as GET /api/deployments/{id} shows it,
// and a few cells of GET /api/status.
func verifyHistory(ctx context.Context, c *client, man *Manifest) error {
	var errs []error
	same := func(what string, want, got []byte) {
		var w, g any
		if err := errors.Join(json.Unmarshal(want, &w), json.Unmarshal(got, &g)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			return
		}
		if !reflect.DeepEqual(w, g) {
			errs = append(errs, fmt.Errorf("%s reads back as\n%s\nnot as generated\n%s", what, got, want))
		}
	}
	for _, raw := range man.Flows {
		var f deploydb.Flow
		if err := json.Unmarshal(raw, &f); err != nil {
			return err
		}
		got, err := c.do(ctx, ActorReader, "GET", "/api/flows/"+strconv.FormatInt(f.ID, 10), nil, 200)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		same(fmt.Sprintf("flow %d", f.ID), raw, got)
		for _, d := range f.Deployments {
			want, _ := json.Marshal(d)
			got, err := c.do(ctx, ActorReader, "GET", "/api/deployments/"+strconv.FormatInt(d.ID, 10), nil, 200)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			same(fmt.Sprintf("deployment %d", d.ID), want, got)
		}
	}
	var m deploydb.Matrix
	if err := c.getJSON(ctx, "/api/status", &m); err != nil {
		return errors.Join(append(errs, err)...)
	}
	id := func(d *deploydb.MatrixDeployment) int64 {
		if d == nil {
			return 0
		}
		return d.ID
	}
	for _, want := range man.Cells {
		var got *deploydb.MatrixCell
		for i := range m.Services {
			if m.Services[i].Service == want.Service {
				got = m.Services[i].Cell(want.Environment)
			}
		}
		if got == nil {
			errs = append(errs, fmt.Errorf("GET /api/status has no cell %s/%s", want.Service, want.Environment))
			continue
		}
		since := int64(0)
		if !got.CurrentSince.IsZero() {
			since = got.CurrentSince.UnixMilli()
		}
		have := Cell{want.Service, want.Environment, id(got.Current), since, id(got.InFlight), id(got.LastAttempt), id(got.LastKnownGood)}
		if have != want {
			errs = append(errs, fmt.Errorf("GET /api/status cell %s/%s is %+v, generated %+v", want.Service, want.Environment, have, want))
		}
	}
	if len(man.Flows) == 0 || len(man.Cells) == 0 {
		errs = append(errs, errors.New("the manifest names nothing to read back"))
	}
	return errors.Join(errs...)
}
