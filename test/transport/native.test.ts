/** The native TCP transport passes the Transport contract (the wire itself: roundtrip, robustness, preauth tests). */
import { nativeTcp } from '../../src/transport/index.js';
import { transportContract } from './contract.js';

transportContract(nativeTcp.name, nativeTcp);
