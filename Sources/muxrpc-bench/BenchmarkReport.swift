import Foundation

/// One benchmark result: ordered key/value pairs, printed as
/// `key=value key=value` or as a JSON object.
struct BenchmarkReport {
    var fields: [(key: String, value: String)] = []

    mutating func add(_ key: String, _ value: Int) { fields.append((key, String(value))) }
    mutating func add(_ key: String, _ value: String) { fields.append((key, value)) }
    mutating func add(_ key: String, _ value: Double) { fields.append((key, String(format: "%.1f", value))) }

    func print(json: Bool) {
        if json {
            Swift.print("{" + fields.map { "\"\($0.key)\": \(Double($0.value) == nil ? "\"\($0.value)\"" : $0.value)" }.joined(separator: ", ") + "}")
        } else {
            Swift.print(fields.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
    }
}

/// Progress for long runs, on stderr so stdout stays one line per result.
func progress(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
