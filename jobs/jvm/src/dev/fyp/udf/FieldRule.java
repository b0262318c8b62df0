package dev.fyp.udf;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.types.DataType;

import java.util.HashSet;
import java.util.Set;
import java.util.regex.Pattern;

/** One field's type and constraints, read from the schema descriptor (see schemas/record.py). */
final class FieldRule {
    final String name;
    final String kind; // "string" | "long" | "boolean"
    final boolean required;
    final JsonNode defaultValue;
    final Long min;
    final Long max;
    final Long maxFutureSkewMs;
    final Pattern pattern;
    final CharRun charRun;  // the pattern, when it is one ASCII class repeated: checked without a regex
    final Set<String> allowed;

    FieldRule(JsonNode spec) {
        name = spec.get("name").asText();
        kind = spec.get("kind").asText();
        required = spec.path("required").asBoolean(true);
        defaultValue = spec.has("default") ? spec.get("default") : null;
        min = spec.hasNonNull("min") ? spec.get("min").asLong() : null;
        max = spec.hasNonNull("max") ? spec.get("max").asLong() : null;
        maxFutureSkewMs = spec.hasNonNull("max_future_skew_ms") ? spec.get("max_future_skew_ms").asLong() : null;
        pattern = spec.hasNonNull("pattern") ? Pattern.compile(spec.get("pattern").asText()) : null;
        charRun = pattern == null ? null : CharRun.of(pattern.pattern());
        if (spec.hasNonNull("allowed")) {
            allowed = new HashSet<>();
            spec.get("allowed").forEach(v -> allowed.add(v.asText()));
        } else {
            allowed = null;
        }
    }

    DataType dataType() {
        switch (kind) {
            case "string": return DataTypes.STRING();
            case "long": return DataTypes.BIGINT();
            case "boolean": return DataTypes.BOOLEAN();
            default: throw new IllegalArgumentException("unknown field kind " + kind);
        }
    }

    /** Returns the typed value, or throws Invalid with the reason. */
    Object convert(JsonNode node, long nowMs) throws Invalid {
        if (node == null) {
            if (required) throw new Invalid("missing_field:" + name);
            return convert(defaultValue, nowMs);
        }
        switch (kind) {
            case "string": {
                if (!node.isTextual()) throw new Invalid("wrong_type:" + name);
                String s = node.textValue();
                if (pattern != null && !pattern.matcher(s).matches()) throw new Invalid("bad_format:" + name);
                if (allowed != null && !allowed.contains(s)) throw new Invalid("not_allowed:" + name);
                return s;
            }
            case "long": {
                if (!node.isIntegralNumber()) throw new Invalid("wrong_type:" + name);
                if (!node.canConvertToLong()) throw new Invalid("out_of_range:" + name);
                long v = node.longValue();
                if ((min != null && v < min) || (max != null && v > max)) throw new Invalid("out_of_range:" + name);
                if (maxFutureSkewMs != null && v > nowMs + maxFutureSkewMs) throw new Invalid("in_future:" + name);
                return v;
            }
            case "boolean": {
                if (!node.isBoolean()) throw new Invalid("wrong_type:" + name);
                return node.booleanValue();
            }
            default:
                throw new IllegalStateException(kind);
        }
    }

    /** A value as {@link RecordSchema} scans it: a String, a Long, a Boolean, or one of these. */
    static final Object BIG_INTEGER = new Object();  // an integer beyond a long
    static final Object OTHER = new Object();  // a float, null, an object or an array

    /** Returns the typed value of a scanned field (null: absent), or throws Invalid with the
     * reason: the same checks, in the same order, as {@link #convert}. */
    Object convertScanned(Object raw, long nowMs) throws Invalid {
        if (raw == null) return convert(null, nowMs);  // absent: missing, or the default
        switch (kind) {
            case "string": {
                if (!(raw instanceof String)) throw new Invalid("wrong_type:" + name);
                String s = (String) raw;
                if (pattern != null && !(charRun != null ? charRun.matches(s) : pattern.matcher(s).matches())) {
                    throw new Invalid("bad_format:" + name);
                }
                if (allowed != null && !allowed.contains(s)) throw new Invalid("not_allowed:" + name);
                return s;
            }
            case "long": {
                if (raw == BIG_INTEGER) throw new Invalid("out_of_range:" + name);
                if (!(raw instanceof Long)) throw new Invalid("wrong_type:" + name);
                long v = (Long) raw;
                if ((min != null && v < min) || (max != null && v > max)) throw new Invalid("out_of_range:" + name);
                if (maxFutureSkewMs != null && v > nowMs + maxFutureSkewMs) throw new Invalid("in_future:" + name);
                return v;
            }
            case "boolean": {
                if (!(raw instanceof Boolean)) throw new Invalid("wrong_type:" + name);
                return raw;
            }
            default:
                throw new IllegalStateException(kind);
        }
    }

    /** A pattern of the form [class]{m,n} or [class]{n} whose class lists ASCII characters and
     * ranges (escapes only of punctuation): the same strings match as with the regex (a character
     * outside ASCII is in no such class), at a fraction of its cost on every event's ids. */
    static final class CharRun {
        private static final Pattern FORM = Pattern.compile("\\[([^\\]^][^\\]]*)\\]\\{(\\d+)(?:,(\\d+))?\\}");
        final boolean[] allowed = new boolean[128];
        final int min, max;

        private CharRun(int min, int max) {
            this.min = min;
            this.max = max;
        }

        /** The run the pattern is, or null when it is anything else (the regex checks it then). */
        static CharRun of(String regex) {
            java.util.regex.Matcher m = FORM.matcher(regex);
            if (!m.matches()) return null;
            String body = m.group(1);
            int min = Integer.parseInt(m.group(2));
            CharRun run = new CharRun(min, m.group(3) == null ? min : Integer.parseInt(m.group(3)));
            for (int i = 0; i < body.length(); i++) {
                char c = body.charAt(i);
                if (c == '\\') {
                    if (++i == body.length()) return null;
                    c = body.charAt(i);
                    if (Character.isLetterOrDigit(c)) return null;  // \d, \w and the like: classes of their own
                } else if (c == '[' || c == '&') {
                    return null;  // nested classes and intersections
                }
                if (c >= 128) return null;
                if (i + 2 < body.length() && body.charAt(i + 1) == '-') {
                    char end = body.charAt(i + 2);
                    if (end == '\\' || end >= 128 || end < c) return null;
                    for (char x = c; x <= end; x++) run.allowed[x] = true;
                    i += 2;
                } else {
                    run.allowed[c] = true;
                }
            }
            return run;
        }

        boolean matches(String s) {
            int n = s.length();
            if (n < min || n > max) return false;
            for (int i = 0; i < n; i++) {
                char c = s.charAt(i);
                if (c >= 128 || !allowed[c]) return false;
            }
            return true;
        }
    }

    static final class Invalid extends Exception {
        Invalid(String reason) {
            super(reason, null, false, false);
        }
    }
}
