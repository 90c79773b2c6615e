// A minimal PaymentChannel in Node.js (grpc-js), read straight from protos/payswitch/v1/channel.proto.
//
// It keeps the contract of channel.proto and docs/channel-development.md with a fake bank's decisions,
// to show a channel team what the rules look like outside Python:
//   - idempotent by `reference`, one namespace across methods: a repeat with the same content gets the
//     first answer (a refusal included) and is not acted on again; other content is FAILED_PRECONDITION;
//   - OK with an outcome for every decided operation, a decline included; a non-OK status only when it
//     did not act and never will on that reference;
//   - Inquire answers the first answer, or NOT_FOUND, after which the reference is refused for good;
//   - every result carries the amount acted on (for Void, the authorized amount it releases);
//   - nothing is started once the caller's deadline has passed.
// Batch is optional and left out: grpc-js answers UNIMPLEMENTED, and the switch sends single calls.
//
// State is in memory. A real channel keeps its idempotency records durable, written in the same atomic
// step as the operation, or a repeat after a crash acts twice.
//
//   node channel.js [--listen 127.0.0.1:50071]     (port 0 picks a free one; the bound address is printed)

"use strict";

const crypto = require("node:crypto");
const path = require("node:path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTOS = path.resolve(__dirname, "..", "..", "protos");
const definition = protoLoader.loadSync("payswitch/v1/channel.proto", {
  includeDirs: [PROTOS],
  keepCase: true, // field names as the proto spells them: amount_minor, authorization_reference
  longs: String, // int64 arrives as a decimal string and is handled as BigInt: money is never a float
  enums: String,
  oneofs: true, // request.method names the payment method that is set
});
const PaymentChannel = grpc.loadPackageDefinition(definition).payswitch.v1.PaymentChannel;

const { status } = grpc;
const APPROVED = "CHANNEL_OUTCOME_APPROVED";
const DECLINED = "CHANNEL_OUTCOME_DECLINED";

// ISO 4217 minor-unit exponents of the currencies this example accepts; a real channel knows them all.
const EXPONENTS = { USD: 2, EUR: 2, GBP: 2, CHF: 2, SEK: 2, JPY: 0, KRW: 0, BHD: 3, KWD: 3 };
// The test card and wallet token this fake bank declines; it approves every other valid one.
const DECLINE_CARD = "4000000000000002";
const DECLINE_WALLET_TOKEN = "tok_decline";

class Refusal extends Error {
  /** The channel did not act and will not act on this reference; `code` is the gRPC status. */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// reference -> { fingerprint, result } or { fingerprint, refusal }: the first answer, kept for repeats
// and Inquire. A fingerprint of null marks a reference Inquire reported unknown.
const operations = new Map();
// authorization reference -> what the bank holds for it.
const authorizations = new Map();
let channelReferences = 0;

/** What tells a repeat from another operation under the same reference, without keeping card data. */
function fingerprint(method, request) {
  const canonical = (value) =>
    value && typeof value === "object"
      ? Object.keys(value).sort().map((key) => [key, canonical(value[key])])
      : value;
  return crypto.createHash("sha256").update(method).update("\0").update(JSON.stringify(canonical(request))).digest("hex");
}

/** The request's amount as { minor: BigInt, currency }, or a refusal naming what is wrong with it. */
function amountOf(request) {
  const money = request.amount;
  if (!money) throw new Refusal(status.INVALID_ARGUMENT, "amount is required");
  const minor = BigInt(money.amount_minor || "0");
  if (minor <= 0n) throw new Refusal(status.INVALID_ARGUMENT, "amount.amount_minor must be greater than zero");
  if (!(money.currency in EXPONENTS)) throw new Refusal(status.INVALID_ARGUMENT, "amount.currency is not a known ISO 4217 code");
  if (money.exponent !== undefined && money.exponent !== EXPONENTS[money.currency]) {
    throw new Refusal(status.INVALID_ARGUMENT, `amount.exponent must be ${EXPONENTS[money.currency]} for ${money.currency}`);
  }
  return { minor, currency: money.currency };
}

function money(amount) {
  return { amount_minor: amount.minor.toString(), currency: amount.currency, exponent: EXPONENTS[amount.currency] };
}

function approved(reference, amount, message) {
  channelReferences += 1;
  return { reference, outcome: APPROVED, channel_reference: `node_${channelReferences}`, message, amount: money(amount) };
}

function heldAuthorization(request) {
  if (!request.authorization_reference) throw new Refusal(status.INVALID_ARGUMENT, "authorization_reference is required");
  const held = authorizations.get(request.authorization_reference);
  if (!held) throw new Refusal(status.FAILED_PRECONDITION, "no approved authorization with that reference");
  return held;
}

function sameCurrency(held, amount) {
  if (amount.currency !== held.amount.currency) {
    throw new Refusal(status.INVALID_ARGUMENT, `currency ${amount.currency} differs from the authorization's ${held.amount.currency}`);
  }
}

// The decisions: synchronous, so checking the state and changing it is one step.
const decide = {
  Authorize(request) {
    const amount = amountOf(request);
    let declined;
    if (request.method === "card") {
      const number = request.card.number || "";
      if (!/^[0-9]{12,19}$/.test(number)) throw new Refusal(status.INVALID_ARGUMENT, "card.number must be 12 to 19 digits");
      declined = number === DECLINE_CARD;
    } else if (request.method === "wallet") {
      if (!request.wallet.token) throw new Refusal(status.INVALID_ARGUMENT, "wallet.token is required");
      declined = request.wallet.token === DECLINE_WALLET_TOKEN;
    } else {
      throw new Refusal(status.INVALID_ARGUMENT, "a card or a wallet is required");
    }
    if (declined) {
      channelReferences += 1;
      return {
        reference: request.reference, outcome: DECLINED, channel_reference: `node_${channelReferences}`,
        decline_code: "do_not_honor", message: "the issuer declined the authorization", amount: money(amount),
      };
    }
    authorizations.set(request.reference, { amount, captured: null, refunded: 0n, voided: false });
    return approved(request.reference, amount, "approved");
  },

  Capture(request) {
    const held = heldAuthorization(request);
    const amount = amountOf(request);
    sameCurrency(held, amount);
    if (held.voided) throw new Refusal(status.FAILED_PRECONDITION, "the authorization was voided");
    if (held.captured !== null) throw new Refusal(status.FAILED_PRECONDITION, "the authorization was already captured");
    if (amount.minor > held.amount.minor) {
      throw new Refusal(status.OUT_OF_RANGE, `capture of ${amount.minor} exceeds the ${held.amount.minor} authorized`);
    }
    held.captured = amount.minor;
    return approved(request.reference, amount, "captured");
  },

  Void(request) {
    const held = heldAuthorization(request);
    if (held.captured !== null) throw new Refusal(status.FAILED_PRECONDITION, "the authorization was captured; refund it instead");
    if (held.voided) throw new Refusal(status.FAILED_PRECONDITION, "the authorization was already voided");
    held.voided = true;
    return approved(request.reference, held.amount, "voided");
  },

  Refund(request) {
    const held = heldAuthorization(request);
    const amount = amountOf(request);
    sameCurrency(held, amount);
    if (held.captured === null) throw new Refusal(status.FAILED_PRECONDITION, "the authorization was not captured");
    const left = held.captured - held.refunded;
    if (amount.minor > left) throw new Refusal(status.OUT_OF_RANGE, `refund of ${amount.minor} exceeds the ${left} left to refund`);
    held.refunded += amount.minor;
    return approved(request.reference, amount, "refunded");
  },
};

function deadlinePassed(call) {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : Number(deadline);
  return call.cancelled || (Number.isFinite(at) && at <= Date.now());
}

/** The idempotent frame around every acting method: first answers for repeats, one act per reference. */
function operate(method, request, call) {
  const reference = request.reference;
  if (!reference) throw new Refusal(status.INVALID_ARGUMENT, "reference is required");
  const print = fingerprint(method, request);
  const known = operations.get(reference);
  if (known) {
    if (known.fingerprint !== print) {
      // Another operation under a used reference (or one Inquire reported unknown): refused, and the
      // first record stays as it was.
      throw new Refusal(status.FAILED_PRECONDITION, known.fingerprint === null
        ? "reference was reported unknown by Inquire" : "reference already used for a different operation");
    }
    if (known.refusal) throw known.refusal;
    return known.result;
  }
  if (deadlinePassed(call)) {
    // The caller has gone: start nothing, record nothing, so Inquire truthfully says NOT_FOUND.
    throw new Refusal(status.DEADLINE_EXCEEDED, "the deadline passed before the operation started");
  }
  try {
    const result = decide[method](request);
    operations.set(reference, { fingerprint: print, result });
    return result;
  } catch (error) {
    if (error instanceof Refusal) operations.set(reference, { fingerprint: print, refusal: error });
    throw error;
  }
}

function inquire(request) {
  const reference = request.reference;
  if (!reference) throw new Refusal(status.INVALID_ARGUMENT, "reference is required");
  const known = operations.get(reference);
  if (known && known.result) return known.result;
  if (!known) {
    // NOT_FOUND binds: the switch records the operation as never done, so this reference must never be
    // acted on afterwards, even if its request is still on the way.
    operations.set(reference, { fingerprint: null, refusal: new Refusal(status.FAILED_PRECONDITION, "reference was reported unknown by Inquire") });
  }
  throw new Refusal(status.NOT_FOUND, "no operation was performed with this reference");
}

/** A unary handler: a Refusal becomes its status; any other failure happened before acting: INTERNAL. */
function handler(answer) {
  return (call, callback) => {
    try {
      callback(null, answer(call.request, call));
    } catch (error) {
      if (error instanceof Refusal) {
        callback({ code: error.code, details: error.message });
      } else {
        console.error(`channel-node: ${error && error.stack ? error.stack : error}`);
        callback({ code: status.INTERNAL, details: "the channel failed before acting" });
      }
    }
  };
}

function listenAddress(argv) {
  const at = argv.indexOf("--listen");
  return at >= 0 && argv[at + 1] ? argv[at + 1] : "127.0.0.1:50071";
}

function main() {
  const server = new grpc.Server();
  server.addService(PaymentChannel.service, {
    Authorize: handler((request, call) => operate("Authorize", request, call)),
    Capture: handler((request, call) => operate("Capture", request, call)),
    Void: handler((request, call) => operate("Void", request, call)),
    Refund: handler((request, call) => operate("Refund", request, call)),
    Inquire: handler(inquire),
  });
  const address = listenAddress(process.argv);
  server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => {
    if (error) {
      console.error(`channel-node: cannot listen on ${address}: ${error.message}`);
      process.exit(2);
    }
    const host = address.slice(0, address.lastIndexOf(":"));
    console.log(`channel-node listening on ${host}:${port}`);
  });
  for (const signal of ["SIGTERM", "SIGINT"]) {
    process.on(signal, () => server.tryShutdown(() => process.exit(0)));
  }
}

main();
