// Read-your-writes through shardgate with Node.js's mysql2 (its own protocol code, no
// libmysqlclient), while the replica applies each transaction late
// (tests/tests/causal.rs sets that up). Prints 'N passed, M failed' like the Python
// checks, and exits non-zero on any failure.
//
// usage: node causal.js HOST PORT USER PASSWORD DATABASE REPLICA_SERVER_ID

const mysql = require('mysql2/promise');

const [host, port, user, password, database, replica] = process.argv.slice(2);

async function check(name, fn, results) {
  try {
    await fn();
    results.push([name, null]);
  } catch (e) {
    results.push([name, e]);
  }
}

async function writeThenRead(query, c, key) {
  await query.call(c, 'INSERT INTO t VALUES (?)', [key]);
  const [rows] = await query.call(c, 'SELECT @@server_id AS s, COUNT(*) AS n FROM t WHERE id = ?', [key]);
  return [Number(rows[0].s), Number(rows[0].n)];
}

(async () => {
  const results = [];
  const c = await mysql.createConnection({ host, port: Number(port), user, password, database });
  await check('mysql2_text_reads_its_write_on_the_replica', async () => {
    for (const key of [40, 41]) {
      const [server, n] = await writeThenRead(c.query, c, key);
      if (n !== 1) throw new Error(`row ${key} not read back`);
      if (server !== Number(replica)) throw new Error(`read on server ${server}, not the replica`);
    }
  }, results);
  await check('mysql2_prepared_reads_its_write', async () => {
    const [, n] = await writeThenRead(c.execute, c, 42);
    if (n !== 1) throw new Error('row 42 not read back');
  }, results);
  await c.end();
  for (const [name, e] of results) console.log(`${e ? 'FAIL' : 'ok  '} ${name}${e ? ': ' + e.message : ''}`);
  const failed = results.filter(([, e]) => e).length;
  console.log(`${results.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.log(`0 passed, 1 failed: ${e.stack}`);
  process.exit(1);
});
