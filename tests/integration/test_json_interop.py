"""The C JSON converter against an independent implementation of the proto3
JSON mapping: Debian's python3-protobuf (json_format).

For every event type, a fully populated Envelope (every field of the payload
set, recursively, including repeated fields, enums, 64-bit integers beyond
2^53, doubles, booleans and French text with accents) goes through the C
converter (tests/tools/json_convert) in both directions and must come back
equal; the C JSON must also be, as a parsed JSON object, exactly what
json_format.MessageToJson writes. Hostile documents must be refused with an
error naming the offending field, never a crash.

The payloads are filled from the descriptors, so a field added to the schema
is covered without touching this test.
"""
import json
import os
import subprocess
import unittest

from google.protobuf import descriptor as pbd
from google.protobuf import json_format

from maillage.v1 import envelope_pb2

BUILD = os.environ.get("MAILLAGE_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
CONVERT = os.path.join(BUILD, "tests", "json_convert")

FD = pbd.FieldDescriptor

# Texts with what breaks naive converters: accents, apostrophes, quotes,
# backslashes, a newline, a non-BMP character, and an escape-looking sequence.
TEXTS = [
    "Épicerie solidaire « Le Panier » à Hérouville-Saint-Clair",
    "Besoin d'un local de 80 m² près de Caen — cuisine partagée",
    'Coopérative "L\'Œuf" \\ entraide\nligne 2 \u00a0 🌱 \\u00e9',
]


def fill(msg, depth=0, salt=0):
    """Set every field of `msg`, recursively, to a non-default value."""
    for field in msg.DESCRIPTOR.fields:
        if field.containing_oneof is not None:
            continue  # the envelope's payload is chosen by the caller
        repeated = field.label == FD.LABEL_REPEATED
        count = 3 if repeated else 1
        for k in range(count):
            if field.type == FD.TYPE_MESSAGE:
                sub = getattr(msg, field.name).add() if repeated else getattr(msg, field.name)
                fill(sub, depth + 1, salt + k)
                continue
            value = scalar_value(field, salt + k)
            if repeated:
                getattr(msg, field.name).append(value)
            else:
                setattr(msg, field.name, value)


def scalar_value(field, k):
    t = field.type
    if t == FD.TYPE_STRING:
        return "%s — %s n°%d" % (TEXTS[k % len(TEXTS)], field.name, k)
    if t == FD.TYPE_BYTES:
        return bytes(range(k, k + 7)) + b"\xff\xfe"
    if t == FD.TYPE_BOOL:
        return True
    if t == FD.TYPE_ENUM:
        values = field.enum_type.values
        return values[len(values) - 1 - (k % (len(values) - 1))].number
    if t == FD.TYPE_DOUBLE:
        return [0.1 + 0.2, 12.75, 1e-7, 123456.789][k % 4]
    if t == FD.TYPE_FLOAT:
        return 0.5
    if t in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64):
        return [2**62 + 12345, -(2**60) - 7, 2**53 + 1][k % 3]
    if t in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        return [2**64 - 1, 2**53 + 3, 9007199254740993][k % 3]
    if t in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        return [4294967295, 30, 1][k % 3]
    if t in (FD.TYPE_INT32, FD.TYPE_SINT32, FD.TYPE_SFIXED32):
        return [-2147483648, 2147483647, 42][k % 3]
    raise AssertionError("unhandled field type %d" % t)


def payload_fields():
    return list(envelope_pb2.Envelope.DESCRIPTOR.oneofs_by_name["payload"].fields)


def full_envelope(payload_field):
    env = envelope_pb2.Envelope()
    fill(env)
    getattr(env, payload_field.name).SetInParent()
    fill(getattr(env, payload_field.name))
    env.type = payload_field.name.replace("_", ".", 1)
    return env


def run_convert(direction, data, message="maillage.v1.Envelope"):
    proc = subprocess.run([CONVERT, direction, message], input=data, capture_output=True, timeout=30)
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")


class JsonInteropTest(unittest.TestCase):
    def convert_ok(self, direction, data, message="maillage.v1.Envelope"):
        code, out, err = run_convert(direction, data, message)
        self.assertEqual(code, 0, "json_convert %s failed: %s" % (direction, err))
        return out

    def test_schema_has_fourteen_event_types(self):
        self.assertEqual(len(payload_fields()), 14)

    def test_python_json_to_c_binary(self):
        """(a) json_format.MessageToJson -> C to-binary -> python parse == original."""
        for field in payload_fields():
            with self.subTest(payload=field.name):
                env = full_envelope(field)
                text = json_format.MessageToJson(env)
                binary = self.convert_ok("to-binary", text.encode("utf-8"))
                back = envelope_pb2.Envelope.FromString(binary)
                self.assertEqual(back, env)
                self.assertEqual(back.WhichOneof("payload"), field.name)

    def test_python_json_with_original_names_to_c_binary(self):
        """snake_case names (preserving_proto_field_name=True) are accepted too."""
        for field in payload_fields():
            with self.subTest(payload=field.name):
                env = full_envelope(field)
                text = json_format.MessageToJson(env, preserving_proto_field_name=True)
                binary = self.convert_ok("to-binary", text.encode("utf-8"))
                self.assertEqual(envelope_pb2.Envelope.FromString(binary), env)

    def test_python_binary_to_c_json(self):
        """(b) SerializeToString -> C to-json -> json_format.Parse == original."""
        for field in payload_fields():
            with self.subTest(payload=field.name):
                env = full_envelope(field)
                text = self.convert_ok("to-json", env.SerializeToString())
                back = json_format.Parse(text.decode("utf-8"), envelope_pb2.Envelope())
                self.assertEqual(back, env)

    def test_c_json_is_the_canonical_mapping(self):
        """(c) The C JSON equals, as a JSON object, what MessageToJson writes."""
        for field in payload_fields():
            with self.subTest(payload=field.name):
                env = full_envelope(field)
                c_json = json.loads(self.convert_ok("to-json", env.SerializeToString()))
                py_json = json.loads(json_format.MessageToJson(env, preserving_proto_field_name=False))
                self.assertEqual(c_json, py_json)
                # Spot checks of the mapping itself, not only agreement.
                self.assertIsInstance(c_json["occurredAtMs"], str)
                self.assertEqual(c_json["sequence"], str(2**64 - 1))
                self.assertIn("schemaVersion", c_json)

    def test_defaults_omitted_and_empty_payload_written(self):
        """Default values are omitted, but a set oneof member is written even empty."""
        for field in payload_fields():
            with self.subTest(payload=field.name):
                env = envelope_pb2.Envelope(event_id="e1")
                getattr(env, field.name).SetInParent()
                c_json = json.loads(self.convert_ok("to-json", env.SerializeToString()))
                py_json = json.loads(json_format.MessageToJson(env))
                self.assertEqual(c_json, py_json)
                self.assertEqual(c_json, {"eventId": "e1", field.camelcase_name: {}})

    def test_unknown_enum_numbers_and_special_doubles(self):
        """Unknown enum numbers stay numbers; NaN and infinities are strings."""
        env = envelope_pb2.Envelope()
        env.offer_published.offer.conditions.families.extend([1, 99])
        env.match_found.score = float("inf")  # replaces the payload: last oneof wins
        env.match_found.distance_km = float("-inf")
        env.match_found.components.add(value=float("nan"), weight=-0.5)
        c_text = self.convert_ok("to-json", env.SerializeToString())
        c_json = json.loads(c_text)
        self.assertEqual(c_json["matchFound"]["score"], "Infinity")
        self.assertEqual(c_json["matchFound"]["distanceKm"], "-Infinity")
        self.assertEqual(c_json["matchFound"]["components"][0]["value"], "NaN")
        self.assertEqual(c_json, json.loads(json_format.MessageToJson(env)))
        back = envelope_pb2.Envelope.FromString(self.convert_ok("to-binary", c_text))
        self.assertEqual(back.SerializeToString(), env.SerializeToString())

        env = envelope_pb2.Envelope()
        env.offer_published.offer.conditions.families.extend([1, 99])
        c_json = json.loads(self.convert_ok("to-json", env.SerializeToString()))
        self.assertEqual(c_json["offerPublished"]["offer"]["conditions"]["families"], ["FAMILY_ASSOCIATION", 99])
        self.assertEqual(c_json, json.loads(json_format.MessageToJson(env)))

    def test_ack_round_trip(self):
        ack = envelope_pb2.Ack(event_id="é1", status=envelope_pb2.Ack.STATUS_REJECTED, sequence=2**63,
                               reason="champ inconnu", field="need_reported.need.commune")
        c_json = json.loads(self.convert_ok("to-json", ack.SerializeToString(), "maillage.v1.Ack"))
        self.assertEqual(c_json, json.loads(json_format.MessageToJson(ack)))
        binary = self.convert_ok("to-binary", json.dumps(c_json).encode(), "maillage.v1.Ack")
        self.assertEqual(envelope_pb2.Ack.FromString(binary), ack)

    def test_lenient_inputs_accepted_by_the_mapping(self):
        """Numbers for 64-bit ints, strings for 32-bit ints, enum numbers, null."""
        doc = {
            "eventId": "e1",
            "occurredAtMs": 1700000000000,
            "sequence": 12,
            "schemaVersion": "1",
            "correlationId": None,
            "needClosed": {"needId": "n1", "reason": 2, "comment": None},
        }
        env = envelope_pb2.Envelope.FromString(self.convert_ok("to-binary", json.dumps(doc).encode()))
        expected = json_format.Parse(json.dumps(doc), envelope_pb2.Envelope())
        self.assertEqual(env, expected)
        self.assertEqual(env.need_closed.reason, 2)

    def assert_rejected(self, data, *fragments):
        code, out, err = run_convert("to-binary", data)
        self.assertEqual(code, 1, "expected a clean refusal, got exit %d, stderr %r" % (code, err))
        self.assertEqual(out, b"")
        self.assertNotIn("Sanitizer", err)  # a leak or overflow on an error path
        for fragment in fragments:
            self.assertIn(fragment, err)
        self.assertEqual(err.count("\n"), 1, err)

    def test_hostile_inputs_are_refused_naming_the_field(self):
        cases = [
            (b'{"needReported": {"need": {"needId": "n1", "colour": "red"}}}', "needReported.need.colour",
             "unknown field"),
            (b'{"needReported": {"need": {"radiusKm": "loin"}}}', "needReported.need.radiusKm", "integer"),
            (b'{"needReported": {"need": {"radiusKm": 1.5}}}', "needReported.need.radiusKm", "integer"),
            (b'{"needReported": {"need": {"radiusKm": -1}}}', "needReported.need.radiusKm", "range"),
            (b'{"needReported": {"need": {"radiusKm": 4294967296}}}', "needReported.need.radiusKm", "range"),
            (b'{"needReported": {"need": {"tags": "cuisine"}}}', "needReported.need.tags", "array"),
            (b'{"needReported": {"need": {"tags": ["a", 3]}}}', "needReported.need.tags[1]", "string"),
            (b'{"needReported": {"need": {"tags": [null]}}}', "needReported.need.tags[0]", "null"),
            (b'{"needReported": {"need": true}}', "needReported.need", "object"),
            (b'{"eventId": 12}', "eventId", "string"),
            (b'{"matchFound": {"retired": "yes"}}', "matchFound.retired", "true or false"),
            (b'{"matchFound": {"score": "beaucoup"}}', "matchFound.score", "number"),
            (b'{"needClosed": {"reason": "CLOSURE_PERHAPS"}}', "needClosed.reason", "CLOSURE_PERHAPS"),
            (b'{"needClosed": {}, "needReported": {}}', "needReported", "oneof"),
            (b'{"eventId": "a", "event_id": "b"}', "eventId", "duplicate"),
            (b'{"eventId": "a", "eventId": "b"}', "eventId", "duplicate"),
            (b'{"eventId": "ab\xffcd"}', "eventId"),
            (b'{"needReported": {"need": {"title": "caf\xc3"}}}', "needReported.need.title"),
            (b'{"sequence": 123456789012345678901234567890}', "sequence"),
            (b'{"sequence": "123456789012345678901234567890"}', "sequence", "range"),
            (b'{"occurredAtMs": "9223372036854775808"}', "occurredAtMs", "range"),
            (b'{"sequence": "-1"}', "sequence", "range"),
            (b'{"schemaVersion": 1e400}', "schemaVersion"),
            (b'{"matchFound": {"score": 1e400}}', "matchFound.score"),
            (b'{"correlationId": ' + b"[" * 100 + b"]" * 100 + b"}", "correlationId", "deeper"),
            (b'{"correlationId": ' + b"[" * 5000 + b"]" * 5000 + b"}", "correlationId"),
            (b'{"correlationId": ' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"}", "correlationId"),
            (b"[1, 2]", "object"),
            (b'{"eventId": "e1"', "line 1"),
            (b"", "invalid JSON"),
        ]
        for data, *fragments in cases:
            with self.subTest(data=data[:80]):
                self.assert_rejected(data, *fragments)

    def test_garbage_binary_is_refused(self):
        code, out, err = run_convert("to-json", b"\xff\xff\xff\xff\x0f\x01")
        self.assertEqual(code, 1)
        self.assertIn("not a valid", err)


if __name__ == "__main__":
    unittest.main()
