//go:build js

package main

import (
	"errors"
	"fmt"
	"runtime/debug"
	"syscall/js"
)

// jsError is a rejected Promise's reason or a thrown JS exception.
type jsError struct{ name, msg string }

func (e *jsError) Error() string {
	if e.name == "" || e.name == "Error" {
		return e.msg
	}
	return e.name + ": " + e.msg
}

func toError(v js.Value) error {
	if v.Type() == js.TypeObject && v.Get("message").Type() == js.TypeString {
		name := ""
		if n := v.Get("name"); n.Type() == js.TypeString {
			name = n.String()
		}
		return &jsError{name, v.Get("message").String()}
	}
	return &jsError{"", v.String()}
}

// isQuota reports whether err is the browser's storage quota error.
func isQuota(err error) bool {
	var je *jsError
	return errors.As(err, &je) && je.name == "QuotaExceededError"
}

// await waits for a Promise from a goroutine (never from inside a
// js.FuncOf callback: the Go runtime deadlocks there).
func await(p js.Value) (js.Value, error) {
	if p.Type() != js.TypeObject || p.Get("then").Type() != js.TypeFunction {
		return p, nil
	}
	done := make(chan struct{})
	var v js.Value
	var err error
	ok := js.FuncOf(func(_ js.Value, a []js.Value) any {
		if len(a) > 0 {
			v = a[0]
		}
		close(done)
		return nil
	})
	bad := js.FuncOf(func(_ js.Value, a []js.Value) any {
		err = &jsError{"", "rejected"}
		if len(a) > 0 {
			err = toError(a[0])
		}
		close(done)
		return nil
	})
	p.Call("then", ok, bad)
	<-done
	ok.Release()
	bad.Release()
	return v, err
}

// call calls a method, turning a thrown exception into an error.
func call(v js.Value, method string, args ...any) (out js.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			if je, ok := r.(js.Error); ok {
				err = toError(je.Value)
				return
			}
			err = fmt.Errorf("%v", r)
		}
	}()
	return v.Call(method, args...), nil
}

// callAwait calls a method returning a Promise and awaits it.
func callAwait(v js.Value, method string, args ...any) (js.Value, error) {
	p, err := call(v, method, args...)
	if err != nil {
		return js.Undefined(), err
	}
	return await(p)
}

// yield lets the worker's event loop run (so a cancel message gets
// through while a long computation runs on the Go side).
func yield() {
	p := js.Global().Get("Promise").New(js.FuncOf(func(_ js.Value, a []js.Value) any {
		js.Global().Call("setTimeout", a[0], 0)
		return nil
	}))
	await(p)
}

// newError builds the JS Error a Promise is rejected with: message and
// code (docs/JS_API.md lists the codes).
func newError(err error) js.Value {
	e := js.Global().Get("Error").New(err.Error())
	e.Set("code", ErrorCode(err))
	return e
}

// promise runs work on a goroutine and returns a Promise of its result.
// A panic becomes a rejection (code "internal") instead of killing the
// Go program, which would leave the worker dead.
func promise(work func() (any, error)) js.Value {
	var handler js.Func
	handler = js.FuncOf(func(this js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer handler.Release()
			defer func() {
				if r := recover(); r != nil {
					reject.Invoke(newError(fmt.Errorf("internal error: %v\n%s", r, debug.Stack())))
				}
			}()
			v, err := work()
			if err != nil {
				reject.Invoke(newError(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	return js.Global().Get("Promise").New(handler)
}

// bytesToJS copies b into a new Uint8ClampedArray (ImageData's type).
func bytesToJS(b []byte) js.Value {
	a := js.Global().Get("Uint8ClampedArray").New(len(b))
	js.CopyBytesToJS(a, b)
	return a
}

// bytesFromJS copies a Uint8Array, Uint8ClampedArray or ArrayBuffer.
func bytesFromJS(v js.Value) ([]byte, error) {
	if !v.Truthy() {
		return nil, nil
	}
	if v.InstanceOf(js.Global().Get("ArrayBuffer")) {
		v = js.Global().Get("Uint8Array").New(v)
	}
	if !v.InstanceOf(js.Global().Get("Uint8Array")) && !v.InstanceOf(js.Global().Get("Uint8ClampedArray")) {
		return nil, errors.New("expected a Uint8Array, Uint8ClampedArray or ArrayBuffer")
	}
	b := make([]byte, v.Get("length").Int())
	js.CopyBytesToGo(b, v)
	return b, nil
}

func rgbaToJS(p *RGBA) js.Value {
	if p == nil {
		return js.Null()
	}
	return js.ValueOf(map[string]any{"width": p.Width, "height": p.Height, "rgba": bytesToJS(p.Pix)})
}

// isObject reports whether o can have fields.
func isObject(o js.Value) bool {
	return o.Type() == js.TypeObject || o.Type() == js.TypeFunction
}

// field returns o[k], undefined when o is not an object.
func field(o js.Value, k string) js.Value {
	if !isObject(o) {
		return js.Undefined()
	}
	return o.Get(k)
}

// option getters: a missing or null field (or a missing options object)
// gives the default.
func optString(o js.Value, k, def string) string {
	if v := field(o, k); v.Type() == js.TypeString {
		return v.String()
	}
	return def
}

func optNumber(o js.Value, k string, def float64) float64 {
	if v := field(o, k); v.Type() == js.TypeNumber {
		return v.Float()
	}
	return def
}

func optBool(o js.Value, k string, def bool) bool {
	if v := field(o, k); v.Type() == js.TypeBoolean {
		return v.Bool()
	}
	return def
}

func optFunc(o js.Value, k string) js.Value {
	if v := field(o, k); v.Type() == js.TypeFunction {
		return v
	}
	return js.Undefined()
}

func optStrings(o js.Value, k string) []string {
	v := field(o, k)
	switch v.Type() {
	case js.TypeString:
		if v.String() == "" {
			return nil
		}
		return []string{v.String()}
	case js.TypeObject:
		if !js.Global().Get("Array").Call("isArray", v).Bool() {
			return nil
		}
		out := make([]string, v.Length())
		for i := range out {
			out[i] = v.Index(i).String()
		}
		return out
	}
	return nil
}
