// A k6 (grpc-go 1.73) client for the example scenarios: one call every
// INTERVAL ms for DURATION s through one connection to ADDR (the method from
// PROTO_DIR/helloworld/helloworld.proto); every failed call and a final
// count are printed:
//   k6 run -q --no-usage-report -e ADDR=127.0.0.1:50051 -e PROTO_DIR=proto k6-calls.js
import grpc from 'k6/net/grpc';
import { sleep } from 'k6';

const client = new grpc.Client();
client.load([__ENV.PROTO_DIR], 'helloworld/helloworld.proto');
export const options = { vus: 1, iterations: 1 };

export default function () {
  client.connect(__ENV.ADDR, { plaintext: true, timeout: '3s' });
  const end = Date.now() + Number(__ENV.DURATION || 7) * 1000;
  const md = __ENV.DELAY ? { 'x-delay-ms': __ENV.DELAY } : {};
  let ok = 0;
  let errors = 0;
  while (Date.now() < end) {
    const res = client.invoke('helloworld.Greeter/SayHello', { name: 'k6' },
      { metadata: md, timeout: __ENV.TIMEOUT || '1s' });
    if (res.error) {
      errors++;
      console.log(`ERROR code=${res.error.code} desc=${JSON.stringify(res.error.message)}`);
    } else {
      ok++;
    }
    sleep(Number(__ENV.INTERVAL || 100) / 1000);
  }
  console.log(`final: ok=${ok} errors=${errors}`);
  client.close();
}
