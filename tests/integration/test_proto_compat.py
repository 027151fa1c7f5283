"""The schema stays compatible with the committed baseline.

proto/baseline/maillage-v1.binpb is the descriptor set of the last published
maillage.v1 schema; MAILLAGE_BUILD/maillage-v1.binpb is the one built from
proto/ now. The evolution rules of proto/README.md are checked between the
two, and every violation is listed (not just the first), so a reviewer sees
at once what a schema change broke.

Both the binary wire format and the proto3 JSON mapping are public contracts
of Maillage, so the rules are those safe for both: a field keeps its number,
its name (JSON uses it), its type and its label; what goes away leaves its
number and name reserved; enum values are only appended.

The self-check mutates copies of the baseline to prove the checker catches
each kind of breaking change and accepts the safe ones: without it, a checker
that never reports anything would pass too.
"""
import copy
import os
import shutil
import subprocess
import tempfile
import unittest

from google.protobuf import descriptor_pb2

SOURCE = os.environ.get("MAILLAGE_SOURCE", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("MAILLAGE_BUILD", os.path.join(SOURCE, "build"))
BASELINE = os.path.join(SOURCE, "proto", "baseline", "maillage-v1.binpb")
CURRENT = os.path.join(BUILD, "maillage-v1.binpb")
PACKAGE = "maillage.v1"

FDP = descriptor_pb2.FieldDescriptorProto


def load(path):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        fds.ParseFromString(f.read())
    return fds


def _walk_messages(prefix, messages, out_messages, out_enums):
    for m in messages:
        name = "%s.%s" % (prefix, m.name)
        out_messages[name] = m
        for e in m.enum_type:
            out_enums["%s.%s" % (name, e.name)] = e
        _walk_messages(name, m.nested_type, out_messages, out_enums)


def index(fds):
    """Messages and enums of the maillage.* files, by full name."""
    messages, enums = {}, {}
    for f in fds.file:
        if not f.package.startswith("maillage."):
            continue  # imports such as google/protobuf/*.proto
        for e in f.enum_type:
            enums["%s.%s" % (f.package, e.name)] = e
        _walk_messages(f.package, f.message_type, messages, enums)
    return messages, enums


def _reserved_numbers(msg):
    # DescriptorProto.ReservedRange: end is exclusive.
    return lambda n: any(r.start <= n < r.end for r in msg.reserved_range)


def _enum_reserved_numbers(enum):
    # EnumDescriptorProto.EnumReservedRange: end is inclusive.
    return lambda n: any(r.start <= n <= r.end for r in enum.reserved_range)


def _label(field):
    """Label, with proto3 `optional` folded into singular: same wire, same JSON."""
    return "repeated" if field.label == FDP.LABEL_REPEATED else (
        "required" if field.label == FDP.LABEL_REQUIRED else "singular")


def _oneof(msg, field):
    """The real oneof a field belongs to ('' if none; synthetic proto3-optional oneofs ignored)."""
    if not field.HasField("oneof_index") or field.proto3_optional:
        return ""
    return msg.oneof_decl[field.oneof_index].name


def _type(field):
    name = FDP.Type.Name(field.type)[len("TYPE_"):].lower()
    return "%s %s" % (name, field.type_name.lstrip(".")) if field.type_name else name


def check_compatible(baseline, current):
    """Every rule of proto/README.md broken by `current` against `baseline`, as sentences."""
    problems = []
    for f in current.file:
        if f.name.startswith("maillage/v1/") and f.package != PACKAGE:
            problems.append("%s: package is %r, must stay %r (breaking changes go to maillage.v2)"
                            % (f.name, f.package, PACKAGE))

    old_messages, old_enums = index(baseline)
    new_messages, new_enums = index(current)

    for name, old in sorted(old_messages.items()):
        new = new_messages.get(name)
        if new is None:
            problems.append("message %s removed (or renamed)" % name)
            continue
        new_by_number = {f.number: f for f in new.field}
        new_by_name = {f.name: f for f in new.field}
        reserved_now = _reserved_numbers(new)
        for of in old.field:
            where = "%s.%s (= %d)" % (name, of.name, of.number)
            nf = new_by_number.get(of.number)
            if nf is None:
                if of.name in new_by_name:
                    problems.append("%s: number changed to %d" % (where, new_by_name[of.name].number))
                elif not (reserved_now(of.number) and of.name in new.reserved_name):
                    problems.append("%s: field removed without `reserved %d;` and `reserved \"%s\";`"
                                    % (where, of.number, of.name))
                continue
            if nf.name != of.name:
                problems.append("%s: name changed to %r (the JSON name is part of the contract)" % (where, nf.name))
            elif nf.json_name != of.json_name:
                problems.append("%s: JSON name changed from %r to %r" % (where, of.json_name, nf.json_name))
            if _type(nf) != _type(of):
                problems.append("%s: type changed from %s to %s" % (where, _type(of), _type(nf)))
            if _label(nf) != _label(of):
                problems.append("%s: label changed from %s to %s" % (where, _label(of), _label(nf)))
            if _oneof(new, nf) != _oneof(old, of):
                problems.append("%s: oneof changed from %r to %r" % (where, _oneof(old, of), _oneof(new, nf)))
        # Reservations are forever: neither reused by a field nor dropped.
        reserved_before = _reserved_numbers(old)
        for nf in new.field:
            if reserved_before(nf.number):
                problems.append("%s.%s: uses reserved number %d" % (name, nf.name, nf.number))
            if nf.name in old.reserved_name:
                problems.append("%s.%s: uses reserved name %r" % (name, nf.name, nf.name))
        for r in old.reserved_range:
            for n in range(r.start, min(r.end, r.start + 10000)):
                if not reserved_now(n) and n not in new_by_number:
                    problems.append("%s: reservation of number %d dropped" % (name, n))
                    break
        for rn in old.reserved_name:
            if rn not in new.reserved_name and rn not in new_by_name:
                problems.append("%s: reservation of name %r dropped" % (name, rn))

    for name, old in sorted(old_enums.items()):
        new = new_enums.get(name)
        if new is None:
            problems.append("enum %s removed (or renamed)" % name)
            continue
        new_by_number = {v.number: v for v in new.value}
        new_by_name = {v.name: v for v in new.value}
        reserved_now = _enum_reserved_numbers(new)
        for ov in old.value:
            where = "%s.%s (= %d)" % (name, ov.name, ov.number)
            nv = new_by_number.get(ov.number)
            if nv is None:
                if ov.name in new_by_name:
                    problems.append("%s: renumbered to %d" % (where, new_by_name[ov.name].number))
                elif not (reserved_now(ov.number) and ov.name in new.reserved_name):
                    problems.append("%s: value removed without `reserved %d;` and `reserved \"%s\";`"
                                    % (where, ov.number, ov.name))
            elif nv.name != ov.name:
                problems.append("%s: renamed to %s (JSON writes enum names)" % (where, nv.name))
        old_numbers = {v.number for v in old.value}
        old_max = max(old_numbers)
        reserved_before = _enum_reserved_numbers(old)
        for nv in new.value:
            if nv.number in old_numbers:
                continue
            if reserved_before(nv.number) or nv.name in old.reserved_name:
                problems.append("%s.%s (= %d): reuses a reserved number or name" % (name, nv.name, nv.number))
            elif nv.number < old_max:
                problems.append("%s.%s (= %d): new values must be appended after %d"
                                % (name, nv.name, nv.number, old_max))
    return problems


class ProtoCompatTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.baseline = load(BASELINE)

    def test_current_schema_is_compatible_with_baseline(self):
        self.assertTrue(os.path.exists(CURRENT), "%s not built (target descriptor_set)" % CURRENT)
        problems = check_compatible(self.baseline, load(CURRENT))
        self.assertEqual(problems, [], "the schema breaks the evolution rules of proto/README.md:\n  "
                         + "\n  ".join(problems))

    def test_baseline_is_the_maillage_v1_schema(self):
        messages, enums = index(self.baseline)
        self.assertIn("maillage.v1.Envelope", messages)
        self.assertIn("maillage.v1.Ack", messages)
        self.assertIn("maillage.v1.Family", enums)
        payloads = [f for f in messages["maillage.v1.Envelope"].field if f.HasField("oneof_index")]
        self.assertEqual(len(payloads), 14)

    # --- self-check: the checker is not vacuous ---------------------------

    def mutated(self):
        return copy.deepcopy(self.baseline)

    @staticmethod
    def message(fds, full_name):
        return index(fds)[0][full_name]

    @staticmethod
    def enum(fds, full_name):
        return index(fds)[1][full_name]

    @staticmethod
    def field(msg, name):
        return next(f for f in msg.field if f.name == name)

    def assert_breaks(self, fds, *fragments):
        problems = check_compatible(self.baseline, fds)
        text = "\n".join(problems)
        for fragment in fragments:
            self.assertIn(fragment, text)
        return problems

    def assert_safe(self, fds):
        self.assertEqual(check_compatible(self.baseline, fds), [])

    def test_identical_schema_passes(self):
        self.assert_safe(self.mutated())

    def test_catches_type_change(self):
        fds = self.mutated()
        self.field(self.message(fds, "maillage.v1.Need"), "radius_km").type = FDP.TYPE_UINT64
        self.assert_breaks(fds, "maillage.v1.Need.radius_km (= 8): type changed from uint32 to uint64")

    def test_catches_message_type_change(self):
        fds = self.mutated()
        self.field(self.message(fds, "maillage.v1.NeedReported"), "need").type_name = ".maillage.v1.Offer"
        self.assert_breaks(fds, "type changed from message maillage.v1.Need to message maillage.v1.Offer")

    def test_catches_field_removed_without_reserve(self):
        fds = self.mutated()
        need = self.message(fds, "maillage.v1.Need")
        need.field.remove(self.field(need, "urgency"))
        self.assert_breaks(fds, "maillage.v1.Need.urgency (= 12): field removed without")

    def test_accepts_field_removed_with_number_and_name_reserved(self):
        fds = self.mutated()
        need = self.message(fds, "maillage.v1.Need")
        need.field.remove(self.field(need, "urgency"))
        need.reserved_range.add(start=12, end=13)
        need.reserved_name.append("urgency")
        self.assert_safe(fds)
        # ... but reserving only the number is not enough.
        del need.reserved_name[:]
        self.assert_breaks(fds, "field removed without")

    def test_catches_reserved_number_reused(self):
        base = self.mutated()
        need = self.message(base, "maillage.v1.Need")
        need.field.remove(self.field(need, "urgency"))
        need.reserved_range.add(start=12, end=13)
        need.reserved_name.append("urgency")
        reused = copy.deepcopy(base)
        rneed = self.message(reused, "maillage.v1.Need")
        rneed.field.add(name="priority", number=12, label=FDP.LABEL_OPTIONAL, type=FDP.TYPE_STRING,
                        json_name="priority")
        del rneed.reserved_range[:]
        problems = check_compatible(base, reused)
        self.assertTrue(any("uses reserved number 12" in p for p in problems), problems)

    def test_catches_rename_renumber_and_label_change(self):
        fds = self.mutated()
        need = self.message(fds, "maillage.v1.Need")
        self.field(need, "title").name = "headline"
        self.field(need, "commune").number = 99
        self.field(need, "category").label = FDP.LABEL_REPEATED
        self.assert_breaks(fds, "maillage.v1.Need.title (= 5): name changed to 'headline'",
                           "maillage.v1.Need.commune (= 7): number changed to 99",
                           "maillage.v1.Need.category (= 3): label changed from singular to repeated")

    def test_catches_json_name_change(self):
        fds = self.mutated()
        self.field(self.message(fds, "maillage.v1.Need"), "need_id").json_name = "id"
        self.assert_breaks(fds, "JSON name changed from 'needId' to 'id'")

    def test_catches_message_and_enum_removed(self):
        fds = self.mutated()
        for f in fds.file:
            for m in list(f.message_type):
                if m.name == "MatchFeedback":
                    f.message_type.remove(m)
            for e in list(f.enum_type):
                if e.name == "MatchOutcome":
                    f.enum_type.remove(e)
        self.assert_breaks(fds, "message maillage.v1.MatchFeedback removed", "enum maillage.v1.MatchOutcome removed")

    def test_catches_enum_value_changes(self):
        fds = self.mutated()
        family = self.enum(fds, "maillage.v1.Family")
        family.value[1].number = 42  # FAMILY_ASSOCIATION renumbered
        family.value[2].name = "FAMILY_COOP"
        self.assert_breaks(fds, "maillage.v1.Family.FAMILY_ASSOCIATION (= 1): renumbered to 42",
                           "maillage.v1.Family.FAMILY_COOPERATIVE (= 2): renamed to FAMILY_COOP")
        fds = self.mutated()
        closure = self.enum(fds, "maillage.v1.Closure")
        closure.value.remove(closure.value[-1])
        self.assert_breaks(fds, "maillage.v1.Closure.CLOSURE_MEMBER_LEFT (= 4): value removed without")

    def test_catches_enum_value_reusing_reserved_or_not_appended(self):
        base = self.mutated()
        family = self.enum(base, "maillage.v1.Family")
        family.value.remove(family.value[3])  # leave a gap at 3, reserved
        family.reserved_range.add(start=3, end=3)
        family.reserved_name.append("FAMILY_MUTUAL")
        changed = copy.deepcopy(base)
        self.enum(changed, "maillage.v1.Family").value.add(name="FAMILY_MUTUAL", number=3)
        problems = check_compatible(base, changed)
        self.assertTrue(any("reuses a reserved number" in p for p in problems), problems)

        base = self.mutated()
        self.enum(base, "maillage.v1.Closure").value[-1].number = 9  # a baseline with a gap
        changed = copy.deepcopy(base)
        self.enum(changed, "maillage.v1.Closure").value.add(name="CLOSURE_MERGED", number=5)
        problems = check_compatible(base, changed)
        self.assertTrue(any("CLOSURE_MERGED (= 5): new values must be appended after 9" in p
                            for p in problems), problems)

    def test_catches_oneof_and_package_change(self):
        fds = self.mutated()
        env = self.message(fds, "maillage.v1.Envelope")
        self.field(env, "correlation_id").oneof_index = 0
        for f in fds.file:
            f.package = "maillage.v2" if f.name.startswith("maillage/v1/") else f.package
        problems = check_compatible(self.baseline, fds)
        text = "\n".join(problems)
        self.assertIn("package is 'maillage.v2'", text)
        self.assertIn("message maillage.v1.Envelope removed", text)

        fds = self.mutated()
        self.field(self.message(fds, "maillage.v1.Envelope"), "correlation_id").oneof_index = 0
        self.assert_breaks(fds, "maillage.v1.Envelope.correlation_id (= 8): oneof changed from '' to 'payload'")

    def test_catches_breaking_edit_of_the_proto_source(self):
        """The same, end to end: a real .proto edit compiled by protoc."""
        protoc = shutil.which("protoc")
        if not protoc:
            self.skipTest("protoc not installed")
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(os.path.join(SOURCE, "proto", "maillage"), os.path.join(tmp, "maillage"))
            events = os.path.join(tmp, "maillage", "v1", "events.proto")
            with open(events, encoding="utf-8") as f:
                text = f.read()
            self.assertIn("uint32 radius_km = 8;", text)
            text = text.replace("uint32 radius_km = 8;", "int64 radius_km = 8;", 1)
            text = text.replace("  uint32 urgency = 12;", "", 1)
            with open(events, "w", encoding="utf-8") as f:
                f.write(text)
            out = os.path.join(tmp, "set.binpb")
            protos = [os.path.join(tmp, "maillage", "v1", n)
                      for n in sorted(os.listdir(os.path.join(tmp, "maillage", "v1"))) if n.endswith(".proto")]
            subprocess.run([protoc, "-I" + tmp, "--include_imports", "--descriptor_set_out=" + out] + protos,
                           check=True, timeout=60)
            self.assert_breaks(load(out), "maillage.v1.Need.radius_km (= 8): type changed from uint32 to int64",
                               "maillage.v1.Need.urgency (= 12): field removed without")

    def test_accepts_additions(self):
        fds = self.mutated()
        need = self.message(fds, "maillage.v1.Need")
        need.field.add(name="surface_m2", number=13, label=FDP.LABEL_OPTIONAL, type=FDP.TYPE_UINT32,
                       json_name="surfaceM2")
        self.enum(fds, "maillage.v1.Family").value.add(name="FAMILY_SOCIAL_ENTERPRISE", number=9)
        for f in fds.file:
            if f.name == "maillage/v1/events.proto":
                f.message_type.add(name="NeedReminded").field.add(
                    name="need_id", number=1, label=FDP.LABEL_OPTIONAL, type=FDP.TYPE_STRING, json_name="needId")
        self.assert_safe(fds)


if __name__ == "__main__":
    unittest.main()
