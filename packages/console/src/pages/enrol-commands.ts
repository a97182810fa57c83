// The commands a device runs to enrol with a one-time token and then connect with its certificate
// (docs/identity.md "With a one-time token", docs/device-sdk.md "From the shell"), filled in with
// the platform's addresses (GET /endpoints). Pure, so that the console's unit tests run them.

export interface EnrolCommand {
  title: string;
  text: string;
}

/** Where the commands point: the platform's HTTP API and, when it is on, MQTT over TLS. */
export interface EnrolTarget {
  http: string;
  mqtts?: string | undefined;
}

/** The SenML records the TLS example publishes (RFC 8428 §5). */
export const exampleSenml = '[{"n":"temp","u":"Cel","v":21.5}]';
/** The file of the CA that signed the listeners' own certificates, as docs/identity.md names it. */
export const listenerCaFile = 'listener-ca.pem';

/** One shell word, always in single quotes (a quote inside closed, escaped and reopened, POSIX sh), so that every command reads alike. */
export function shellWord(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** A value in an openssl -subj name: `/`, `+`, `=` and `\` are escaped with a backslash (openssl-req(1) -subj). */
function subjectValue(s: string): string {
  return s.replace(/[\\/+=]/g, (c) => `\\${c}`);
}

/** `openssl req`, then `jq` and `curl` of POST /enrol: the device's key and CSR (the serial in the subject), enrolled with `token`. */
export function opensslCurlCommands(http: string, token: string, serial: string, commonName = 'device'): EnrolCommand[] {
  const subject = shellWord(`/serialNumber=${subjectValue(serial)}/CN=${subjectValue(commonName)}`);
  return [
    {
      title: 'On the device: its key and certificate request (the serial in the subject)',
      text: `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \\\n  -subj ${subject} -keyout device.key -out device.csr`,
    },
    {
      title: 'Enrol with the token, then keep the certificate and its issuing CA',
      text: `jq -n --rawfile csr device.csr --arg token ${shellWord(token)} '{csr: $csr, token: $token}' \\\n  | curl -s -X POST ${shellWord(`${http}/enrol`)} -H 'content-type: application/json' -d @- > enrolled.json\njq -r '.certificate, .chain[0]' enrolled.json > device.pem`,
    },
  ];
}

/** `fleetwire-device enrol`, then `run` (the device SDK's command keeps the key and certificate in ./fleetwire-device). */
export function deviceSdkCommand(target: EnrolTarget, token: string, serial: string): EnrolCommand {
  const ca = target.mqtts || target.http.startsWith('https:') ? ` --ca ${listenerCaFile}` : '';
  return {
    title: 'With the device SDK: enrol, then publish every 10 s over MQTT with the certificate',
    text: `fleetwire-device enrol --url ${shellWord(target.http)} \\\n  --token ${shellWord(token)} --serial ${shellWord(serial)}${ca}\nfleetwire-device run --interval 10`,
  };
}

/** `mosquitto_pub` over TLS with the certificate `opensslCurlCommands` leaves in device.pem and device.key; undefined without MQTT over TLS. */
export function mqttTlsCommand(mqtts: string | undefined, channelId: string, subtopic = 'hello'): EnrolCommand | undefined {
  if (!mqtts) return undefined;
  const url = new URL(mqtts);
  return {
    title: 'Then publish over MQTT with TLS, the certificate as its credentials',
    text: `mosquitto_pub -h ${shellWord(url.hostname)} -p ${url.port || '8883'} --cafile ${listenerCaFile} \\\n  --cert device.pem --key device.key -V mqttv5 -q 1 \\\n  -t ${shellWord(`channels/${channelId}/messages/${subtopic}`)} -m ${shellWord(exampleSenml)}`,
  };
}
