package main

// streaming-call: one Nomad streaming call reading Stream.Count's frames,
// written the way Nomad writes a streaming endpoint: a go-msgpack encoder
// straight on the yamux stream, one Encode per value. The same shape as
// `muxrpc-bench streaming-call`.

import (
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"time"

	"github.com/hashicorp/go-msgpack/codec"
	"github.com/hashicorp/yamux"
)

const (
	rpcMultiplexV2 = 0x06
	rpcStreaming   = 0x05
)

// Nomad's handle: strings for raw bytes, maps read into map[string]interface{}.
func nomadHandle() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{RawToString: true}
	h.MapType = reflect.TypeOf(map[string]interface{}(nil))
	return h
}

type streamingHeader struct{ Method string }
type streamingAck struct{ Error string }
type countArgs struct{ Count int64 }
type countFrame struct{ N int64 }

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

// serveStreaming accepts one connection: a 0x06 session whose 0x05 streams
// are Stream.Count calls.
func serveStreaming(listener net.Listener, handle *codec.MsgpackHandle) {
	conn, err := listener.Accept()
	if err != nil {
		return
	}
	kind := make([]byte, 1)
	if _, err := io.ReadFull(conn, kind); err != nil || kind[0] != rpcMultiplexV2 {
		fail("streaming server: want 0x06, got %v %v", kind, err)
	}
	session, err := yamux.Server(conn, yamux.DefaultConfig())
	if err != nil {
		fail("streaming server: %v", err)
	}
	for {
		stream, err := session.Accept()
		if err != nil {
			return
		}
		go func(stream net.Conn) {
			defer stream.Close()
			if _, err := io.ReadFull(stream, kind[:1]); err != nil || kind[0] != rpcStreaming {
				return
			}
			decoder := codec.NewDecoder(stream, handle)
			encoder := codec.NewEncoder(stream, handle)
			var header streamingHeader
			if decoder.Decode(&header) != nil {
				return
			}
			if encoder.Encode(streamingAck{}) != nil {
				return
			}
			var args countArgs
			if decoder.Decode(&args) != nil {
				return
			}
			for n := int64(0); n < args.Count; n++ {
				if encoder.Encode(countFrame{N: n}) != nil {
					return
				}
			}
		}(stream)
	}
}

func streamingCallBench(values int64) float64 {
	handle := nomadHandle()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	defer listener.Close()
	go serveStreaming(listener, handle)

	conn, err := net.Dial("tcp", listener.Addr().String())
	if err != nil {
		fail("dial: %v", err)
	}
	if _, err := conn.Write([]byte{rpcMultiplexV2}); err != nil {
		fail("preamble: %v", err)
	}
	session, err := yamux.Client(conn, yamux.DefaultConfig())
	if err != nil {
		fail("session: %v", err)
	}
	defer session.Close()

	start := time.Now()
	stream, err := session.Open()
	if err != nil {
		fail("open: %v", err)
	}
	if _, err := stream.Write([]byte{rpcStreaming}); err != nil {
		fail("stream byte: %v", err)
	}
	decoder := codec.NewDecoder(stream, handle)
	encoder := codec.NewEncoder(stream, handle)
	if err := encoder.Encode(streamingHeader{Method: "Stream.Count"}); err != nil {
		fail("header: %v", err)
	}
	var ack streamingAck
	if err := decoder.Decode(&ack); err != nil || ack.Error != "" {
		fail("ack: %v %q", err, ack.Error)
	}
	if err := encoder.Encode(countArgs{Count: values}); err != nil {
		fail("args: %v", err)
	}
	for n := int64(0); n < values; n++ {
		var frame countFrame
		if err := decoder.Decode(&frame); err != nil {
			fail("frame %d: %v", n, err)
		}
		if frame.N != n {
			fail("frame %d is N=%d", n, frame.N)
		}
	}
	elapsed := time.Since(start)
	stream.Close()
	return float64(values) / elapsed.Seconds()
}
