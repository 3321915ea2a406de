//go:build js

// Command wasm is retrace's browser runtime (GOOS=js GOARCH=wasm), meant to
// run in a Web Worker. It exposes a Promise-based API on globalThis.retrace;
// for now: info() → the adapter description, limits and features.
//
// Calls never block inside js.FuncOf callbacks (the Go runtime deadlocks when
// a callback awaits a Promise): each call returns a Promise and does its work
// on a goroutine.
package main

import (
	"encoding/json"
	"syscall/js"

	"retrace/nn/gpu"
)

func promise(work func() (any, error)) js.Value {
	var handler js.Func
	handler = js.FuncOf(func(this js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer handler.Release()
			v, err := work()
			if err != nil {
				reject.Invoke(js.Global().Get("Error").New(err.Error()))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	return js.Global().Get("Promise").New(handler)
}

func main() {
	var dev *gpu.Device
	api := map[string]any{
		"info": js.FuncOf(func(this js.Value, args []js.Value) any {
			return promise(func() (any, error) {
				if dev == nil {
					d, err := gpu.Open(gpu.Options{})
					if err != nil {
						return nil, err
					}
					dev = d
				}
				b, err := json.Marshal(dev.Info())
				if err != nil {
					return nil, err
				}
				return js.Global().Get("JSON").Call("parse", string(b)), nil
			})
		}),
	}
	js.Global().Set("retrace", js.ValueOf(api))
	select {}
}
