-- One write, then one read of what was written, on the same connection: the latency
-- of read-your-writes. Counts reads that did not see their write (stale), per thread.
function prepare()
  local con = sysbench.sql.driver():connect()
  con:query("CREATE TABLE IF NOT EXISTS causal_bench (id BIGINT PRIMARY KEY, v INT NOT NULL)")
end

function thread_init()
  con = sysbench.sql.driver():connect()
  stale = 0
  base = (sysbench.tid + 1) * 1000000000 + os.time() % 100000 * 10000
  n = 0
end

function event()
  n = n + 1
  local id = base + n
  con:query("INSERT INTO causal_bench (id, v) VALUES (" .. id .. ", 1)")
  local rs = con:query("SELECT v FROM causal_bench WHERE id = " .. id)
  if rs.nrows ~= 1 then
    stale = stale + 1
  end
end

function thread_done()
  print(string.format("thread %d: %d of %d reads missed their write", sysbench.tid, stale, n))
  con:disconnect()
end
