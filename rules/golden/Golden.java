// Golden vectors for the Mycat- and ShardingSphere-compatible algorithms, computed in
// Java with Guava's murmur3_32 (Debian: libguava-java) and Java's own hashCode, from the
// algorithms as Mycat and ShardingSphere document them. Run:
//
//   java -cp /usr/share/java/guava.jar rules/golden/Golden.java > rules/tests/golden/java.txt
//
// Output lines: `<algorithm> <parameters> <value> <shard>`.
import com.google.common.hash.HashFunction;
import com.google.common.hash.Hashing;
import java.math.BigInteger;
import java.util.SortedMap;
import java.util.TreeMap;

public class Golden {
    // Mycat PartitionByMurmurHash: for shard i, virtualBucketTimes * weight points; the
    // point names are built by appending "-NODE-" + n to one StringBuilder that starts
    // as "SHARD-" + i, so each name extends the previous one.
    static TreeMap<Integer, Integer> mycatRing(int seed, int count, int virtualBucketTimes, int[] weights) {
        HashFunction hash = Hashing.murmur3_32(seed);
        TreeMap<Integer, Integer> ring = new TreeMap<>();
        for (int i = 0; i < count; i++) {
            StringBuilder name = new StringBuilder("SHARD-").append(i);
            int points = virtualBucketTimes * (weights == null ? 1 : weights[i]);
            for (int n = 0; n < points; n++) {
                ring.put(hash.hashUnencodedChars(name.append("-NODE-").append(n)).asInt(), i);
            }
        }
        return ring;
    }

    static int mycatShard(TreeMap<Integer, Integer> ring, int seed, String value) {
        int h = Hashing.murmur3_32(seed).hashUnencodedChars(value).asInt();
        SortedMap<Integer, Integer> tail = ring.tailMap(h);
        return tail.isEmpty() ? ring.get(ring.firstKey()) : tail.get(tail.firstKey());
    }

    static final String[] KEYS = {
        "0", "1", "2", "7", "42", "100", "999", "1000", "65535", "123456789",
        "9223372036854775807", "-1", "-42", "abc", "ABC", "hello world", "user_0001",
        "中文", "Straße", "",
    };

    public static void main(String[] args) {
        int[][] configs = {{0, 2, 160}, {0, 4, 160}, {0, 10, 160}, {97, 3, 160}, {0, 5, 16}};
        for (int[] c : configs) {
            TreeMap<Integer, Integer> ring = mycatRing(c[0], c[1], c[2], null);
            for (String k : KEYS) {
                System.out.println("murmur seed=" + c[0] + ",shards=" + c[1] + ",vbt=" + c[2] + " " + quote(k) + " " + mycatShard(ring, c[0], k));
            }
        }
        int[] weights = {1, 2, 3};
        TreeMap<Integer, Integer> weighted = mycatRing(0, 3, 160, weights);
        for (String k : KEYS) {
            System.out.println("murmur seed=0,shards=3,vbt=160,weights=1:2:3 " + quote(k) + " " + mycatShard(weighted, 0, k));
        }

        // shardgate's own hash_mod and jump over the canonical UTF-8 text of a key (an
        // integer's decimal text; a string as is): hash_mod = unsigned murmur3_32(seed 0)
        // mod n; jump = Guava consistentHash (Lamping & Veach's jump hash) of
        // key64 = murmur3_32(seed 0) << 32 | murmur3_32(seed 0x9747b28c).
        for (int count : new int[] {1, 2, 3, 8, 10, 1000}) {
            for (String k : KEYS) {
                byte[] b = k.getBytes(java.nio.charset.StandardCharsets.UTF_8);
                long h = Integer.toUnsignedLong(Hashing.murmur3_32(0).hashBytes(b).asInt());
                long h2 = Integer.toUnsignedLong(Hashing.murmur3_32(0x9747b28c).hashBytes(b).asInt());
                long key64 = (h << 32) | h2;
                System.out.println("hash_mod shards=" + count + " " + quote(k) + " " + (h % count));
                System.out.println("jump shards=" + count + " " + quote(k) + " " + Hashing.consistentHash(key64, count));
            }
        }

        // ShardingSphere HASH_MOD: Math.abs((long) value.hashCode()) % shardingCount.
        long[] longs = {0, 1, 7, 42, 1000, 123456789L, 4294967296L, -1, -42, Long.MAX_VALUE, Long.MIN_VALUE, 1234567890123L};
        for (int count : new int[] {2, 4, 10}) {
            for (long v : longs) {
                System.out.println("ss_hash_mod long,count=" + count + " " + v + " " + (Math.abs((long) Long.valueOf(v).hashCode()) % count));
            }
            for (long v : longs) {
                if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) continue;
                System.out.println("ss_hash_mod integer,count=" + count + " " + v + " " + (Math.abs((long) Integer.valueOf((int) v).hashCode()) % count));
            }
            for (String k : KEYS) {
                System.out.println("ss_hash_mod string,count=" + count + " " + quote(k) + " " + (Math.abs((long) k.hashCode()) % count));
            }
            // ShardingSphere MOD: new BigInteger(value).mod(shardingCount).
            for (long v : longs) {
                System.out.println("ss_mod count=" + count + " " + v + " " + new BigInteger(String.valueOf(v)).mod(BigInteger.valueOf(count)));
            }
        }
    }

    static String quote(String s) {
        return "'" + s + "'";
    }
}
