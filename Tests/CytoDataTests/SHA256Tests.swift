import XCTest

@testable import CytoData

final class SHA256Tests: XCTestCase {
    func testKnownVectors() {
        XCTAssertEqual(SHA256.hex(SHA256.hash([UInt8]())), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(SHA256.hash(Array("abc".utf8))), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(
            SHA256.hex(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Streaming in odd pieces gives the same digest as one call.
        let data = (0..<1000).map { UInt8($0 % 251) }
        var s = SHA256()
        var i = 0
        for step in [1, 63, 64, 65, 7, 300] { s.update(data[i..<min(data.count, i + step)]); i += step }
        s.update(data[i...])
        XCTAssertEqual(s.finalize(), SHA256.hash(data))
    }
}
