/// The checks of a configuration's `validate()`: each `require` throws the
/// configuration's own error, with its message, when its condition fails.
package struct ConfigurationCheck<Failure: Error> {
    let makeError: (String) -> Failure

    package init(makeError: @escaping (String) -> Failure) {
        self.makeError = makeError
    }

    package func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(Failure) {
        if !condition { throw makeError(message()) }
    }
}
