package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/deploydb/deploydb"
)

// Problem is one thing wrong with a configuration directory.
type Problem struct {
	// File is the slash-separated path of the file, relative to the
	// configuration directory ("services/billing.yml"). It is a directory
	// ("services") when the problem concerns a directory, and empty when it
	// concerns the configuration directory itself.
	File string
	// Line is the 1-based line in File, or 0 when the problem concerns the
	// whole file.
	Line int
	// Field is the path of the offending value inside the file, such as
	// "pipelines[0]" or "environments.prod.promotions[1]"; empty when the
	// problem is not about one value (a YAML syntax error, say).
	Field string
	// Message says what is wrong, for people.
	Message string
}

// Location returns where the problem is as "file:line: field", leaving out
// the parts that are unknown.
func (p Problem) Location() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	if p.Field != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(p.Field)
	}
	return b.String()
}

// String returns the problem as "file:line: field: message".
func (p Problem) String() string {
	if loc := p.Location(); loc != "" {
		return loc + ": " + p.Message
	}
	return p.Message
}

// Error is the error Load returns when a configuration cannot be loaded: it
// lists every problem found in every file, not just the first.
//
// Error unwraps to a *deploydb.Error with code deploydb.EINVALID whose
// Fields carry the same problems (Field is Problem.Location, Message is
// Problem.Message), so errors.As, deploydb.ErrorCode and the API and CLI
// error rendering work on it unchanged.
type Error struct {
	// Problems is sorted by file, then line; problems on the same line keep
	// the order in which they were found. It is never empty.
	Problems []Problem
}

// maxFileProblems bounds the problems reported per file: past a few dozen,
// more of them tell nothing new, and a hostile file must not make an error
// of megabytes.
const maxFileProblems = 50

// newError returns an *Error for problems, sorted, with at most
// maxFileProblems of each file and a last one saying how many were left
// out.
func newError(problems []Problem) *Error {
	ps := slices.Clone(problems)
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	out := ps[:0:0]
	for i := 0; i < len(ps); {
		j := i
		for j < len(ps) && ps[j].File == ps[i].File {
			j++
		}
		if n := j - i; n > maxFileProblems {
			out = append(out, ps[i:i+maxFileProblems]...)
			last := ps[i+maxFileProblems-1]
			out = append(out, Problem{File: last.File, Line: last.Line, Message: fmt.Sprintf("%d more problems in this file are not shown", n-maxFileProblems)})
		} else {
			out = append(out, ps[i:j]...)
		}
		i = j
	}
	return &Error{Problems: out}
}

// Error returns one line per problem, "file:line: field: message".
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems as a *deploydb.Error with code EINVALID.
func (e *Error) Unwrap() error {
	fields := make([]deploydb.FieldError, len(e.Problems))
	for i, p := range e.Problems {
		fields[i] = deploydb.FieldError{Field: p.Location(), Message: p.Message}
	}
	noun := "problems"
	if len(e.Problems) == 1 {
		noun = "problem"
	}
	return &deploydb.Error{
		Code:    deploydb.EINVALID,
		Message: fmt.Sprintf("invalid configuration: %d %s", len(e.Problems), noun),
		Fields:  fields,
	}
}
