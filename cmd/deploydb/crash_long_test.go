//go:build crash

package main

// crashKillsDefault is how many times the crash tests kill the server
// with -tags crash: the long form.
const crashKillsDefault = 50
