// Package readme holds, in its tests, the README's code that is not part of
// an example program, as runnable Example functions, so that it compiles
// and does what the README says.
package readme
