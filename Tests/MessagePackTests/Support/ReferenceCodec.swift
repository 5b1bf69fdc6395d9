import CMsgpack
import MessagePack
import NIOCore

/// msgpack-c (Debian's libmsgpack-dev), driven from Swift: the reference
/// our codec is compared with, byte for byte and value for value.
enum ReferenceCodec {
    /// Packs `value` with msgpack-c. With `legacyStrings`, strings use
    /// msgpack-c's old-spec "raw" functions (no str8), as go-msgpack writes.
    static func pack(_ value: MessagePackValue, legacyStrings: Bool = false) -> [UInt8] {
        var buffer = msgpack_sbuffer()
        msgpack_sbuffer_init(&buffer)
        defer { msgpack_sbuffer_destroy(&buffer) }
        withUnsafeMutablePointer(to: &buffer) { bufferPointer in
            var packer = msgpack_packer()
            msgpack_packer_init(&packer, bufferPointer, msgpack_sbuffer_write)
            pack(value, into: &packer, legacyStrings: legacyStrings)
        }
        return Array(UnsafeRawBufferPointer(start: buffer.data, count: buffer.size))
    }

    private static func pack(_ value: MessagePackValue, into packer: inout msgpack_packer, legacyStrings: Bool) {
        switch value {
        case .nil: msgpack_pack_nil(&packer)
        case .bool(let bool): _ = bool ? msgpack_pack_true(&packer) : msgpack_pack_false(&packer)
        case .int(let int): msgpack_pack_int64(&packer, int)
        case .uint(let uint): msgpack_pack_uint64(&packer, uint)
        case .float(let float): msgpack_pack_float(&packer, float)
        case .double(let double): msgpack_pack_double(&packer, double)
        case .string(let string):
            var string = string
            string.withUTF8 { utf8 in
                if legacyStrings {
                    msgpack_pack_v4raw(&packer, utf8.count)
                    msgpack_pack_v4raw_body(&packer, utf8.baseAddress, utf8.count)
                } else {
                    msgpack_pack_str(&packer, utf8.count)
                    msgpack_pack_str_body(&packer, utf8.baseAddress, utf8.count)
                }
            }
        case .binary(let bytes):
            bytes.withUnsafeReadableBytes { raw in
                msgpack_pack_bin(&packer, raw.count)
                msgpack_pack_bin_body(&packer, raw.baseAddress, raw.count)
            }
        case .array(let elements):
            msgpack_pack_array(&packer, elements.count)
            for element in elements { pack(element, into: &packer, legacyStrings: legacyStrings) }
        case .map(let entries):
            msgpack_pack_map(&packer, entries.count)
            for entry in entries {
                pack(entry.key, into: &packer, legacyStrings: legacyStrings)
                pack(entry.value, into: &packer, legacyStrings: legacyStrings)
            }
        case .extension(let type, let payload):
            payload.withUnsafeReadableBytes { raw in
                msgpack_pack_ext(&packer, raw.count, type)
                msgpack_pack_ext_body(&packer, raw.baseAddress, raw.count)
            }
        case .timestamp(let timestamp):
            var reference = msgpack_timestamp(tv_sec: timestamp.seconds, tv_nsec: timestamp.nanoseconds)
            msgpack_pack_timestamp(&packer, &reference)
        }
    }

    enum UnpackResult: Equatable {
        case value(MessagePackValue, consumed: Int)
        case needMoreBytes
        case parseError
    }

    /// Unpacks the first value of `bytes` with msgpack-c.
    static func unpack(_ bytes: [UInt8]) -> UnpackResult {
        var unpacked = msgpack_unpacked()
        msgpack_unpacked_init(&unpacked)
        defer { msgpack_unpacked_destroy(&unpacked) }
        var offset = 0
        let status = bytes.withUnsafeBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { chars in
                msgpack_unpack_next(&unpacked, chars.baseAddress, chars.count, &offset)
            }
        }
        switch status {
        case MSGPACK_UNPACK_SUCCESS, MSGPACK_UNPACK_EXTRA_BYTES:
            return .value(convert(unpacked.data), consumed: offset)
        case MSGPACK_UNPACK_CONTINUE:
            return .needMoreBytes
        default:
            return .parseError
        }
    }

    private static func bytes(_ pointer: UnsafePointer<CChar>?, _ count: UInt32) -> ByteBuffer {
        guard count > 0, let pointer else { return ByteBuffer() }
        return ByteBuffer(bytes: UnsafeRawBufferPointer(start: pointer, count: Int(count)))
    }

    private static func convert(_ object: msgpack_object) -> MessagePackValue {
        switch object.type {
        case MSGPACK_OBJECT_NIL: return .nil
        case MSGPACK_OBJECT_BOOLEAN: return .bool(object.via.boolean)
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            let value = object.via.u64
            return value <= UInt64(Int64.max) ? .int(Int64(value)) : .uint(value)
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: return .int(object.via.i64)
        case MSGPACK_OBJECT_FLOAT32: return .float(Float(object.via.f64))
        case MSGPACK_OBJECT_FLOAT64: return .double(object.via.f64)
        case MSGPACK_OBJECT_STR:
            let buffer = bytes(object.via.str.ptr, object.via.str.size)
            return .string(String(decoding: buffer.readableBytesView, as: UTF8.self))
        case MSGPACK_OBJECT_BIN: return .binary(bytes(object.via.bin.ptr, object.via.bin.size))
        case MSGPACK_OBJECT_ARRAY:
            let array = object.via.array
            return .array((0..<Int(array.size)).map { convert(array.ptr[$0]) })
        case MSGPACK_OBJECT_MAP:
            let map = object.via.map
            return .map((0..<Int(map.size)).map { (key: convert(map.ptr[$0].key), value: convert(map.ptr[$0].val)) })
        case MSGPACK_OBJECT_EXT:
            let ext = object.via.ext
            if ext.type == -1 {
                var timestamp = msgpack_timestamp()
                var copy = object
                if msgpack_object_to_timestamp(&copy, &timestamp) {
                    return .timestamp(MessagePackTimestamp(seconds: timestamp.tv_sec, nanoseconds: timestamp.tv_nsec))
                }
            }
            return .extension(type: ext.type, payload: bytes(ext.ptr, ext.size))
        default:
            fatalError("msgpack-c returned an unknown object type \(object.type)")
        }
    }
}
