package deploydb

import "testing"

// FuzzHookFuncBounds checks that the bound each hook template function
// checks against the render's budget before it makes its result is an
// upper bound of that result, for any format and arguments: were it not,
// a function could allocate beyond the budget.
func FuzzHookFuncBounds(f *testing.F) {
	f.Add("%s %d %v", `"a" & <b>`, int64(-7), 3.5, uint8(0))
	f.Add("%q %x % #x %+q %#v %U", "\x00\xff\u2028\U0010ffff", int64(1<<62), -1e308, uint8(1))
	f.Add("%08.3f %[2]*[1]d %.*[3]f %!z %", "", int64(999999), 1e-308, uint8(2))
	f.Add("%v %+v %#v %T %p %e %b", "é", int64(0), 0.1, uint8(3))
	f.Add("%07000000A %.1000009f", "", int64(0), 1e308, uint8(0))
	f.Fuzz(func(t *testing.T, format, s string, n int64, fl float64, pick uint8) {
		ctx := SampleHookContext(EventPromotionCompleted)
		ctx.Reason = s
		args := [][]any{{s, n, fl}, {ctx, s}, {n, int(n), fl, ctx.Artifact}, {s, s, nil, true}}[int(pick)%4]
		if printfBound(format, args) > 9<<20 {
			return // fine, and refused at render unless the budget allows it
		}
		b := &renderBudget{left: 1 << 40}
		funcs := hookFuncs(b)
		call := func(name string, r any, err error) {
			if b.overshoot > 0 {
				t.Fatalf("%s result %.200q (err %v) is %d bytes over its bound", name, r, err, b.overshoot)
			}
		}
		r, err := funcs["printf"].(func(string, ...any) (string, error))(format, args...)
		call("printf", r, err)
		for _, name := range []string{"print", "println", "html", "js", "urlquery"} {
			r, err := funcs[name].(func(...any) (string, error))(args...)
			call(name, r, err)
		}
		for _, a := range append(args, format) {
			r, err := funcs["json"].(func(any) (string, error))(a)
			call("json", r, err)
		}
		for _, name := range []string{"base64", "pathescape"} {
			r, err := funcs[name].(func(string) (string, error))(format + s)
			call(name, r, err)
		}
	})
}
