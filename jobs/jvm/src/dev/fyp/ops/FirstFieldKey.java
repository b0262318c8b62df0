package dev.fyp.ops;

import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.types.Row;

/** Keys a row by its first field, a string (the entity id). */
public class FirstFieldKey implements KeySelector<Row, String> {
    @Override
    public String getKey(Row row) {
        return (String) row.getField(0);
    }
}
