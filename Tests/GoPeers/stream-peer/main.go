// stream-peer: a Go peer that speaks Nomad's streaming RPC, for the MuxRPC
// streaming interop tests, built from Debian's packaged hashicorp/yamux and
// go-msgpack (GOPATH mode). Written for these tests; it shares no code with
// Nomad, but speaks as Nomad's RPC port does: a 0x06 connection is a yamux
// session whose streams each start with a type byte (0x05: a streaming
// call), a 0x05 connection is one streaming call; the caller writes
// StreamingRpcHeader{Method}, the server answers StreamingRpcAck{Error}, and
// then both write bare msgpack values with go-msgpack's encoder straight on
// the stream.
//
//	stream-peer server [-frames N]
//	        serve on 127.0.0.1:0; prints "listening on 127.0.0.1:PORT".
//	        FileSystem.Logs takes an FsLogsRequest; without Follow it writes
//	        N StreamErrWrapper frames (Payload "line I\n"), then closes; with
//	        Follow it writes frames until a write fails (the caller reset the
//	        stream) and prints "follow ended frames=N reset=BOOL".
//	        Any other method is refused in the ack ("Unknown rpc method").
//	stream-peer client -addr H:P [-count N] [-echoes N] [-calls N]
//	        call a Swift server's Stream.Count and Stream.Echo over one 0x06
//	        session (-calls of each at once), check every value; prints
//	        "checks=C failures=F" and exits 1 on any failure.
//	stream-peer callback [-count N]
//	        play a Nomad server that calls a node back: serve on 127.0.0.1:0
//	        (prints "listening on 127.0.0.1:PORT"), take one connection that
//	        starts with 0x06 and run a yamux *server* session on it; then,
//	        over that session, open a 0x01 stream and call Status.Ping,
//	        Echo.Echo and Arith.Add with net-rpc-msgpackrpc, open a 0x05
//	        stream and read Stream.Count's N frames to EOF, and open a stream
//	        with an unknown type byte (0x07), which the node must reset.
//	        Prints "callback echo=E sum=S frames=F unknown=reset|..." and
//	        "checks=C failures=F"; exits 1 on any failure.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-msgpack/codec"
	msgpackrpc "github.com/hashicorp/net-rpc-msgpackrpc"
	"github.com/hashicorp/yamux"
)

const (
	rpcMultiplexV2 = 0x06
	rpcStreaming   = 0x05
)

// The handle as Nomad configures its own: strings for raw bytes, maps read
// into map[string]interface{}, struct fields named by `codec` tags or
// their Go names.
func msgpackHandle() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{RawToString: true}
	h.MapType = reflect.TypeOf(map[string]interface{}(nil))
	return h
}

var handle = msgpackHandle()

type StreamingRpcHeader struct {
	Method string
}

type StreamingRpcAck struct {
	Error string
}

type RpcError struct {
	Message string
	Code    *int64
}

type StreamErrWrapper struct {
	Error   *RpcError
	Payload []byte
}

// FsLogsRequest: the fields of Nomad's, with its QueryOptions flattened.
type FsLogsRequest struct {
	AllocID   string
	Task      string
	LogType   string
	Offset    int64
	Origin    string
	PlainText bool
	Follow    bool
	Region    string
	Namespace string
	AuthToken string
}

type CountArgs struct{ Count int64 }
type CountFrame struct{ N int64 }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: stream-peer server|client ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "server":
		server(os.Args[2:])
	case "client":
		client(os.Args[2:])
	case "callback":
		callback(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "unknown command", os.Args[1])
		os.Exit(2)
	}
}

// MARK: server

var frames = 0

func server(args []string) {
	flags := flag.NewFlagSet("server", flag.ExitOnError)
	flags.IntVar(&frames, "frames", 100, "frames FileSystem.Logs writes without Follow")
	flags.Parse(args)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	for {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		go serveConn(conn)
	}
}

func serveConn(conn net.Conn) {
	first := make([]byte, 1)
	if _, err := io.ReadFull(conn, first); err != nil {
		conn.Close()
		return
	}
	switch first[0] {
	case rpcStreaming:
		handleStreaming(conn)
	case rpcMultiplexV2:
		config := yamux.DefaultConfig()
		config.LogOutput = os.Stderr
		session, err := yamux.Server(conn, config)
		if err != nil {
			conn.Close()
			return
		}
		for {
			stream, err := session.Accept()
			if err != nil {
				return
			}
			go func(stream net.Conn) {
				kind := make([]byte, 1)
				if _, err := io.ReadFull(stream, kind); err != nil || kind[0] != rpcStreaming {
					stream.Close()
					return
				}
				handleStreaming(stream)
			}(stream)
		}
	default:
		conn.Close()
	}
}

// handleStreaming does what Nomad's handleStreamingConn does: header, ack,
// then the method's handler on the same stream.
func handleStreaming(conn io.ReadWriteCloser) {
	defer conn.Close()
	decoder := codec.NewDecoder(conn, handle)
	encoder := codec.NewEncoder(conn, handle)
	var header StreamingRpcHeader
	if err := decoder.Decode(&header); err != nil {
		return
	}
	ack := StreamingRpcAck{}
	if header.Method != "FileSystem.Logs" {
		ack.Error = fmt.Sprintf("Unknown rpc method: %q", header.Method)
	}
	if err := encoder.Encode(ack); err != nil || ack.Error != "" {
		return
	}
	var request FsLogsRequest
	if err := decoder.Decode(&request); err != nil {
		code := int64(400)
		encoder.Encode(StreamErrWrapper{Error: &RpcError{Message: err.Error(), Code: &code}})
		return
	}
	if !request.Follow {
		for i := 0; i < frames; i++ {
			if err := encoder.Encode(StreamErrWrapper{Payload: []byte(fmt.Sprintf("line %d\n", i))}); err != nil {
				return
			}
		}
		return
	}
	// Follow: frames until the caller goes away. A write fails once the
	// stream is reset; a yamux write blocks while the window is spent, so a
	// caller that stops reading holds this loop back.
	written := 0
	for {
		if err := encoder.Encode(StreamErrWrapper{Payload: []byte(fmt.Sprintf("line %d\n", written))}); err != nil {
			fmt.Printf("follow ended frames=%d reset=%v\n", written, errors.Is(err, yamux.ErrConnectionReset) || errors.Is(err, yamux.ErrStreamClosed) || bytes.Contains([]byte(err.Error()), []byte("reset")))
			return
		}
		written++
	}
}

// MARK: client

func client(args []string) {
	flags := flag.NewFlagSet("client", flag.ExitOnError)
	addr := flags.String("addr", "", "server address")
	count := flags.Int64("count", 1000, "frames to ask Stream.Count for")
	echoes := flags.Int("echoes", 100, "values to send Stream.Echo")
	calls := flags.Int("calls", 8, "calls of each method at once")
	flags.Parse(args)

	conn, err := net.Dial("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	conn.Write([]byte{rpcMultiplexV2})
	config := yamux.DefaultConfig()
	config.LogOutput = os.Stderr
	session, err := yamux.Client(conn, config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var checks, failures int64
	check := func(ok bool, format string, args ...interface{}) {
		atomic.AddInt64(&checks, 1)
		if !ok {
			atomic.AddInt64(&failures, 1)
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		}
	}
	var wg sync.WaitGroup
	for c := 0; c < *calls; c++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			countCall(session, *count, check)
		}()
		go func() {
			defer wg.Done()
			echoCall(session, *echoes, check)
		}()
	}
	wg.Wait()
	unknownCall(session, check)
	session.Close()
	fmt.Printf("checks=%d failures=%d\n", checks, failures)
	if failures > 0 {
		os.Exit(1)
	}
}

type checker func(ok bool, format string, args ...interface{})

// open starts a streaming call as Nomad's client does: type byte, header,
// then it waits for the ack.
func open(session *yamux.Session, method string) (net.Conn, *codec.Decoder, *codec.Encoder, StreamingRpcAck, error) {
	stream, err := session.Open()
	if err != nil {
		return nil, nil, nil, StreamingRpcAck{}, err
	}
	if _, err := stream.Write([]byte{rpcStreaming}); err != nil {
		return nil, nil, nil, StreamingRpcAck{}, err
	}
	encoder := codec.NewEncoder(stream, handle)
	decoder := codec.NewDecoder(stream, handle)
	if err := encoder.Encode(StreamingRpcHeader{Method: method}); err != nil {
		return nil, nil, nil, StreamingRpcAck{}, err
	}
	var ack StreamingRpcAck
	err = decoder.Decode(&ack)
	return stream, decoder, encoder, ack, err
}

func countCall(session *yamux.Session, count int64, check checker) int64 {
	stream, decoder, encoder, ack, err := open(session, "Stream.Count")
	check(err == nil && ack.Error == "", "Stream.Count: open: %v, ack %q", err, ack.Error)
	if err != nil || ack.Error != "" {
		return 0
	}
	defer stream.Close()
	check(encoder.Encode(CountArgs{Count: count}) == nil, "Stream.Count: write args")
	for i := int64(0); i < count; i++ {
		var frame CountFrame
		if err := decoder.Decode(&frame); err != nil {
			check(false, "Stream.Count: frame %d: %v", i, err)
			return i
		}
		if frame.N != i {
			check(false, "Stream.Count: frame %d is N=%d", i, frame.N)
			return i
		}
	}
	check(true, "")
	var extra CountFrame
	err = decoder.Decode(&extra)
	check(err == io.EOF, "Stream.Count: after %d frames want EOF, got %v (%+v)", count, err, extra)
	return count
}

func echoCall(session *yamux.Session, echoes int, check checker) {
	stream, decoder, encoder, ack, err := open(session, "Stream.Echo")
	check(err == nil && ack.Error == "", "Stream.Echo: open: %v, ack %q", err, ack.Error)
	if err != nil || ack.Error != "" {
		return
	}
	// hashicorp/yamux reads EOF once the stream is closed here, so every
	// echo is read before the close.
	defer stream.Close()
	for i := 0; i < echoes; i++ {
		sent := map[string]interface{}{"I": int64(i), "Text": fmt.Sprintf("value %d", i), "List": []interface{}{int64(i), "x"}}
		if err := encoder.Encode(sent); err != nil {
			check(false, "Stream.Echo: write %d: %v", i, err)
			return
		}
		var echo map[string]interface{}
		if err := decoder.Decode(&echo); err != nil {
			check(false, "Stream.Echo: echo %d: %v", i, err)
			return
		}
		if fmt.Sprint(echo) != fmt.Sprint(sent) {
			check(false, "Stream.Echo: echo %d is %v, sent %v", i, echo, sent)
			return
		}
	}
	check(true, "")
}

func unknownCall(session *yamux.Session, check checker) {
	stream, decoder, _, ack, err := open(session, "Stream.Nothing")
	check(err == nil && ack.Error == `Unknown rpc method: "Stream.Nothing"`, "unknown method: %v, ack %q", err, ack.Error)
	if stream == nil {
		return
	}
	defer stream.Close()
	var next interface{}
	err = decoder.Decode(&next)
	check(err == io.EOF, "unknown method: after the ack want EOF, got %v", err)
}

// MARK: callback

type Empty struct{}
type EchoArgs struct{ Msg []byte }
type EchoReply struct{ Msg []byte }
type AddArgs struct{ A, B int64 }
type AddReply struct{ Sum int64 }

func callback(args []string) {
	flags := flag.NewFlagSet("callback", flag.ExitOnError)
	count := flags.Int64("count", 100, "frames to ask the node's Stream.Count for")
	flags.Parse(args)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", listener.Addr())
	conn, err := listener.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	first := make([]byte, 1)
	if _, err := io.ReadFull(conn, first); err != nil || first[0] != rpcMultiplexV2 {
		fmt.Fprintf(os.Stderr, "first byte: %v %v\n", first, err)
		os.Exit(1)
	}
	config := yamux.DefaultConfig()
	config.LogOutput = os.Stderr
	session, err := yamux.Server(conn, config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var checks, failures int64
	check := func(ok bool, format string, args ...interface{}) {
		checks++
		if !ok {
			failures++
			fmt.Fprintf(os.Stderr, format+"\n", args...)
		}
	}

	// net/rpc on a 0x01 stream, as Nomad's server calls a node's RPCs.
	var echo, sum string
	if stream, err := session.Open(); err != nil {
		check(false, "open 0x01 stream: %v", err)
	} else {
		stream.Write([]byte{0x01})
		rpc := msgpackrpc.NewClientCodec(stream)
		var empty Empty
		err = msgpackrpc.CallWithCodec(rpc, "Status.Ping", Empty{}, &empty)
		check(err == nil, "Status.Ping: %v", err)
		var echoReply EchoReply
		err = msgpackrpc.CallWithCodec(rpc, "Echo.Echo", EchoArgs{Msg: []byte("from the go server")}, &echoReply)
		check(err == nil && string(echoReply.Msg) == "from the go server", "Echo.Echo: %v %q", err, echoReply.Msg)
		echo = string(echoReply.Msg)
		var addReply AddReply
		err = msgpackrpc.CallWithCodec(rpc, "Arith.Add", AddArgs{A: 40, B: 2}, &addReply)
		check(err == nil && addReply.Sum == 42, "Arith.Add: %v %d", err, addReply.Sum)
		sum = fmt.Sprint(addReply.Sum)
		rpc.Close()
	}

	// A streaming call on a 0x05 stream.
	frames := countCall(session, *count, check)

	// An unknown stream type: the node resets that stream, and only it.
	unknown := "open failed"
	if stream, err := session.Open(); err == nil {
		stream.Write([]byte{0x07, 0x00})
		_, err = stream.Read(make([]byte, 1))
		if errors.Is(err, yamux.ErrConnectionReset) {
			unknown = "reset"
		} else {
			unknown = fmt.Sprint(err)
		}
		check(unknown == "reset", "unknown stream type: want a reset, read %v", err)
		stream.Close()
	}
	check(!session.IsClosed(), "the session closed after the unknown stream")

	fmt.Printf("callback echo=%s sum=%s frames=%d unknown=%s\n", echo, sum, frames, unknown)
	fmt.Printf("checks=%d failures=%d\n", checks, failures)
	session.Close()
	if failures > 0 {
		os.Exit(1)
	}
}
