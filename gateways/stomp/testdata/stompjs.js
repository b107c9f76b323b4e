// Interop check: the real stompjs client (@stomp/stompjs, under Node with
// the ws package) against a Cairn WebSocket listener.
// Usage: node stompjs.js MODULES_DIR URL. Exits 0 when every step works.
const path = require('path');
const modules = process.argv[2];
const { Client } = require(path.join(modules, '@stomp/stompjs'));
const WebSocket = require(path.join(modules, 'ws'));
const url = process.argv[3];

function fail(msg) { console.error('stompjs: ' + msg); process.exit(1); }
setTimeout(() => fail('timed out'), 15000);

const client = new Client({
  webSocketFactory: () => new WebSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp']),
  heartbeatIncoming: 1000,
  heartbeatOutgoing: 1000,
  reconnectDelay: 0,
  onStompError: (f) => fail('ERROR ' + JSON.stringify(f.headers) + ' ' + f.body),
  onWebSocketError: (e) => fail('WebSocket error ' + e.message),
});
const want = ['text one', 'text two'];
const got = [];
client.onConnect = (frame) => {
  if (frame.headers['version'] !== '1.2') fail('version ' + frame.headers['version']);
  client.subscribe('/queue/stompjs', (m) => {
    got.push(m.body);
    m.ack();
    if (got.length === 2) {
      if (JSON.stringify(got) !== JSON.stringify(want)) fail('got ' + JSON.stringify(got));
      // A binary body comes back byte for byte.
      client.subscribe('/queue/stompjs-binary', (b) => {
        const bytes = Array.from(b.binaryBody);
        if (JSON.stringify(bytes) !== JSON.stringify([0, 255, 128, 1])) fail('binary body ' + JSON.stringify(bytes));
        b.ack();
        // Wait out two heart-beat intervals: the connection must stay up.
        setTimeout(() => {
          if (!client.connected) fail('dropped while idle with heart-beats');
          client.deactivate().then(() => { console.log('stompjs ok: text, binary, acks, heart-beats'); process.exit(0); });
        }, 2500);
      }, { ack: 'client-individual' });
      client.publish({ destination: '/queue/stompjs-binary', binaryBody: new Uint8Array([0, 255, 128, 1]), headers: { 'content-type': 'application/octet-stream' } });
    }
  }, { ack: 'client-individual' });
  for (const body of want) client.publish({ destination: '/queue/stompjs', body, headers: { persistent: 'true' } });
};
client.activate();
