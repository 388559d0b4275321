package deploydb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// stageJSON is one pipeline environment in the 0.3 JSON shape.
type stageJSON struct {
	Promotions      []string        `json:"promotions"`
	FailureStrategy FailureStrategy `json:"failureStrategy,omitempty"`
}

type pipelineJSON struct {
	Ident        string          `json:"ident"`
	Description  string          `json:"description"`
	Environments json.RawMessage `json:"environments"`
}

// MarshalJSON writes the pipeline in the 0.3 shape: environments is an
// object keyed by environment, in pipeline order.
func (p Pipeline) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, st := range p.Environments {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(st.Environment)
		promos := st.Promotions
		if promos == nil {
			promos = []string{}
		}
		v, err := json.Marshal(stageJSON{Promotions: promos, FailureStrategy: st.FailureStrategy})
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(v)
	}
	buf.WriteByte('}')
	return json.Marshal(pipelineJSON{Ident: p.Ident, Description: p.Description, Environments: buf.Bytes()})
}

// UnmarshalJSON reads the shape MarshalJSON writes, keeping the order of
// the environments object.
func (p *Pipeline) UnmarshalJSON(b []byte) error {
	var raw pipelineJSON
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	p.Ident, p.Description, p.Environments = raw.Ident, raw.Description, nil
	if len(raw.Environments) == 0 || string(raw.Environments) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw.Environments))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("pipeline environments must be an object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		var st stageJSON
		if err := dec.Decode(&st); err != nil {
			return err
		}
		p.Environments = append(p.Environments, PipelineStage{Environment: t.(string), Promotions: st.Promotions, FailureStrategy: st.FailureStrategy})
	}
	return nil
}

// MarshalJSON writes the hooks in the 0.3 shape:
// {"deployment": {"created": ["url", ...]}, "promotion": {"completed": [...]}},
// a bare URL hook as its URL and an object hook as an object, each as it
// may be shown: as written in the config, without secrets or header values.
func (w Webhook) MarshalJSON() ([]byte, error) {
	out := map[string]map[string][]any{}
	for ev, hooks := range w {
		kind, name, _ := strings.Cut(string(ev), ".")
		if out[kind] == nil {
			out[kind] = map[string][]any{}
		}
		list := make([]any, 0, len(hooks))
		for _, h := range hooks {
			if h.IsBare() {
				list = append(list, h.Shown())
				continue
			}
			h.Display = h.Shown()
			list = append(list, h)
		}
		out[kind][name] = list
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads the shape MarshalJSON writes. An object hook comes
// back without its templates: only what may be shown.
func (w *Webhook) UnmarshalJSON(b []byte) error {
	var in map[string]map[string][]json.RawMessage
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*w = Webhook{}
	kinds := make([]string, 0, len(in))
	for k := range in {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		for name, hooks := range in[kind] {
			ev := EventType(kind + "." + name)
			for _, raw := range hooks {
				var h Hook
				var u string
				if err := json.Unmarshal(raw, &u); err == nil {
					h = Hook{Name: u, URL: u}
				} else if err := json.Unmarshal(raw, &h); err != nil {
					return fmt.Errorf("webhook %s: %w", ev, err)
				} else {
					h.URL = h.Display
				}
				(*w)[ev] = append((*w)[ev], h)
			}
		}
	}
	return nil
}
