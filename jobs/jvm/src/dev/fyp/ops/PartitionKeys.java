package dev.fyp.ops;

import java.nio.charset.StandardCharsets;

import org.apache.kafka.common.utils.Utils;

/**
 * Record keys chosen for the Kafka partition they land on. WHY: a producer sends a keyed record to
 * partition toPositive(murmur2(key)) % partitions (Kafka's built-in partitioner, which Flink's
 * Kafka sink leaves in charge), so keys picked by name alone can share a partition: "batch-0" and
 * "batch-1" both go to partition 0 of 2, and the other partition, and whoever reads it, get nothing.
 */
public final class PartitionKeys {
    private PartitionKeys() {}

    /** The partition of `partitions` that Kafka's built-in partitioner gives `key`. */
    public static int partitionOf(String key, int partitions) {
        return Utils.toPositive(Utils.murmur2(key.getBytes(StandardCharsets.UTF_8))) % partitions;
    }

    /** The first of prefix, prefix-1, prefix-2, .. that lands on `partition` (0 <= partition < partitions). */
    public static String keyFor(String prefix, int partition, int partitions) {
        if (partitions < 1 || partition < 0 || partition >= partitions) {
            throw new IllegalArgumentException("partition " + partition + " of " + partitions);
        }
        String key = prefix;
        for (int n = 1; partitionOf(key, partitions) != partition; n++) {
            key = prefix + "-" + n;  // each try lands on a given partition with odds 1/partitions
        }
        return key;
    }
}
