package dev.fyp.udf;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** A record schema descriptor and the validation order shared with schemas/record.py. */
final class RecordSchema {
    final List<FieldRule> fields = new ArrayList<>();
    final Map<String, Integer> index = new HashMap<>();
    final int maxBytes;

    private RecordSchema(String descriptor, JsonNode spec) {
        this.descriptor = descriptor;
        maxBytes = spec.get("max_bytes").asInt();
        for (JsonNode f : spec.get("fields")) {
            FieldRule rule = new FieldRule(f);
            index.put(rule.name, fields.size());
            fields.add(rule);
        }
    }

    /** A validation result: typed values (null when invalid) and the reason, or null when valid. */
    static final class Validated {
        final Object[] values;
        final String error;

        Validated(Object[] values, String error) {
            this.values = values;
            this.error = error;
        }
    }

    // The last record validated in this thread: the watermark's EventTimeOf and the ParseJsonRecord
    // after it (chained in one task thread, each with its own RecordSchema of the same descriptor)
    // see the same payload one after the other, so the second reuses the first's parse. Keyed by
    // descriptor and payload content: a miss costs a parse, never a wrong answer.
    private static final ThreadLocal<Object[]> LAST = new ThreadLocal<>();  // {descriptor, payload, Validated}

    final String descriptor;

    Validated validateCached(byte[] payload) {
        Object[] last = LAST.get();
        if (last != null && payload != null && descriptor.equals(last[0]) && Arrays.equals((byte[]) last[1], payload)) {
            return (Validated) last[2];
        }
        Object[] values = new Object[fields.size()];
        String error = validateInto(payload, values);
        Validated v = new Validated(error == null ? values : null, error);
        LAST.set(new Object[] {descriptor, payload == null ? null : payload.clone(), v});
        return v;
    }

    static RecordSchema parse(String descriptor) {
        return new RecordSchema(descriptor, ParseJsonRecord.readTree(descriptor));
    }

    /** Fills values[0..n) with typed fields; returns the reason the record is invalid, or null.
     *
     * <p>One streaming pass over the document, no tree: the same reasons in the same order as
     * reading it as a tree would give (a syntax error anywhere, trailing content included, is
     * invalid_json before any other reason; then not_an_object; then the first unknown field in
     * document order; then the fields' rules in schema order; a repeated field's last value counts).
     * Every string in the document is decoded, as a tree would, so bad UTF-8 anywhere is
     * invalid_json. */
    String validateInto(byte[] payload, Object[] values) {
        if (payload == null) return "empty_payload";
        if (payload.length > maxBytes) return "too_large";
        Object[] raw = new Object[fields.size()];
        String unknown = null;
        try (JsonParser p = ParseJsonRecord.FACTORY.createParser(payload)) {
            JsonToken t = p.nextToken();
            if (t == null) return "invalid_json";
            if (t != JsonToken.START_OBJECT) {
                scanValue(p, t);
                return p.nextToken() == null ? "not_an_object" : "invalid_json";
            }
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                Object v = scanValue(p, p.nextToken());
                Integer i = index.get(name);
                if (i != null) raw[i] = v;
                else if (unknown == null) unknown = name;
            }
            if (t != JsonToken.END_OBJECT || p.nextToken() != null) return "invalid_json";
        } catch (Exception e) {
            return "invalid_json";
        }
        if (unknown != null) return "unknown_field:" + unknown;
        long now = System.currentTimeMillis();
        try {
            for (int i = 0; i < fields.size(); i++) {
                values[i] = fields.get(i).convertScanned(raw[i], now);
            }
        } catch (FieldRule.Invalid e) {
            return e.getMessage();
        }
        return null;
    }

    /** The value starting at token t, consumed whole (a container to its end, every string in it
     * decoded): a String, Long or Boolean, or FieldRule.BIG_INTEGER / FieldRule.OTHER. */
    private static Object scanValue(JsonParser p, JsonToken t) throws Exception {
        if (t == null) throw new IllegalStateException("document ends inside a value");
        switch (t) {
            case VALUE_STRING:
                return p.getText();
            case VALUE_NUMBER_INT:
                return p.getNumberType() == JsonParser.NumberType.BIG_INTEGER ? FieldRule.BIG_INTEGER : (Object) p.getLongValue();
            case VALUE_TRUE:
                return Boolean.TRUE;
            case VALUE_FALSE:
                return Boolean.FALSE;
            case VALUE_NUMBER_FLOAT:
                p.getDoubleValue();
                return FieldRule.OTHER;
            case START_OBJECT:
            case START_ARRAY:
                for (int depth = 1; depth > 0; ) {
                    JsonToken in = p.nextToken();
                    if (in == null) throw new IllegalStateException("document ends inside a container");
                    if (in.isStructStart()) depth++;
                    else if (in.isStructEnd()) depth--;
                    else if (in == JsonToken.VALUE_STRING || in == JsonToken.FIELD_NAME) p.getText();
                    else if (in == JsonToken.VALUE_NUMBER_INT || in == JsonToken.VALUE_NUMBER_FLOAT) p.getNumberValue();
                }
                return FieldRule.OTHER;
            default:
                return FieldRule.OTHER;  // null
        }
    }
}
