/*
 * weightcache coherence: version leases with revocation (docs/coherence.md).
 *
 * One name, NH holders, versions 0..MAXV at the origin (a write makes the next
 * one), a home that crashes at most once and is replaced by its successor in
 * rank, lossy channels (any send may be dropped; REVOKE is retransmitted, a
 * holder retries its request), grants and revokes on separate channels so they
 * can overtake each other, unbounded message delay (time advances while a
 * message sits in a channel).
 *
 * Time is discrete ticks. The home's clock is the reference. Bounded clock-rate
 * drift is a per-lease budget: while a lease (or the request that will become
 * one) is counted down, the holder's clock may miss up to D ticks (it runs
 * slow), and the successor home's clock may run up to D ticks fast while it
 * waits out its predecessor's leases. A per-lease budget allows MORE behaviour
 * than one shared clock does, so safety here implies safety there.
 *
 * Properties (assertions; checked with -DSAFETY):
 *   (a) a read that resolves the name after an invalidation was answered never
 *       gets a version older than the one the answer reported (`floor`);
 *   (b) a read is served from one version: every chunk has the version the
 *       read resolved.
 *
 * Mutants (each -D flag MUST give a counterexample; scripts/check-model.sh):
 *   NO_MARGIN          holders use the whole term (no safety margin)
 *   NO_WAIT_ACK        the home answers an invalidation without waiting for
 *                      every REVOKE_ACK or lease expiry
 *   NO_HOME_WAIT       the successor home answers invalidations at once,
 *                      without waiting out the leases its predecessor granted
 *   PER_CHUNK_RESOLVE  a read resolves the name again for its second chunk
 *   ACK_BEFORE_UNBIND  a holder acknowledges a REVOKE before its native version
 *                      binding (the I/O threads' copy of the lease) is removed
 *
 * The native binding: a holder's lease is also installed in the addon, where
 * the HTTP I/O threads serve hits from it without JavaScript; the read steps
 * below stand for those reads too (they read lv[i] while rem[i] > 0, and the
 * binding's deadline is the lease's). On a revoke the holder removes the
 * native binding and only then acknowledges, in one step. The mutant
 * ACK_BEFORE_UNBIND acknowledges first and removes the binding in a later
 * step (unb[i] holds the pending removal), during which I/O threads still
 * serve the revoked version: the model must find that stale read.
 */

#ifndef T
#define T 2 /* lease term, ticks */
#endif
#ifndef D
#define D 1 /* drift budget per lease, ticks: >= rho * T */
#endif
#ifdef NO_MARGIN
#define M 0
#else
#define M D /* safety margin: holders stop using a lease M ticks early */
#endif
#define NH 2     /* holders */
#define MAXV 2   /* versions 0..MAXV */
#define MAXINV 1 /* invalidations the writer issues (a crash re-issues it at the successor) */

mtype = { REQ, ACK };

chan toHome = [1] of { mtype, byte, byte }; /* REQ(holder, 0), ACK(holder, revokeId) */
chan grantCh[NH] = [1] of { byte, byte };   /* LEASE_GRANT response: version, 0 */
chan revokeCh[NH] = [1] of { byte };        /* LEASE_REVOKE: revokeId */
chan invReq = [1] of { bit };               /* POST /v1/invalidate */
chan invAns = [1] of { byte };              /* its answer: the version now bound */

byte ov = 0;    /* the origin's current version */
byte floor = 0; /* ghost: the version the last answered invalidation reported */
byte ninv = 0;
bool invOut = false; /* an invalidation is outstanding (writer side) */

/* home (H1, then H2 after the crash) */
byte hv = 0;          /* home's binding */
byte hexp[NH];        /* home-clock ticks left on the latest lease granted to each holder */
byte rexp[NH];        /* ticks left on a lease being revoked; 0: revoked, acked or expired */
bool pending = false; /* an invalidation is in progress */
byte revokeId = 0;
bool crashed = false;
byte homeWait = 0; /* successor: ticks until its predecessor's leases are surely gone */
byte fastH = 0;

/* holders */
byte lv[NH];      /* leased version */
byte rem[NH];     /* holder-clock ticks left on the lease (already minus M); 0: none */
byte slow[NH];    /* drift budget used by the current lease (or the request that will be one) */
bool waiting[NH]; /* a LEASE_GRANT request is outstanding */
byte reqRem[NH];  /* lease clock started at SEND time of that request */
byte unb[NH];     /* ACK_BEFORE_UNBIND: a revoke acked whose native binding is not removed yet (0: none) */
/* Scratch for message fields, used only inside atomic steps: hidden keeps them
   out of the state vector (they would multiply states without meaning). */
#ifdef SCRATCH_VISIBLE
#define SCRATCH /* Spin's breadth-first search (used for short counterexamples) refuses hidden */
#else
#define SCRATCH hidden
#endif
SCRATCH mtype m;
SCRATCH byte h, a, v, s, e;

bool reading = false; /* holder 0 is between its read's two chunks */
byte rv = 0;          /* the version that read resolved */

inline lossySend1(ch, x1) {
  if
  :: nfull(ch) -> ch!x1
  :: true /* lost */
  fi
}

inline lossySend2(ch, x1, x2) {
  if
  :: nfull(ch) -> ch!x1, x2
  :: true /* lost */
  fi
}

inline tickHolder(i) {
  /* One lease clock per holder: it runs from the request's SEND until the lease
     ends. Values that no longer matter are reset, so equal situations are one state. */
  if
  :: (rem[i] > 0 || (waiting[i] && reqRem[i] > 0)) && slow[i] < D -> slow[i]++ /* clock slow: tick missed */
  :: rem[i] > 0 -> rem[i]--; if :: rem[i] == 0 -> lv[i] = 0; slow[i] = 0 :: else fi
  :: waiting[i] && reqRem[i] > 0 -> reqRem[i]--
  :: else
  fi
}

inline tickHome(i) {
  if
  :: hexp[i] > 0 -> hexp[i]--
  :: else
  fi;
  if
  :: rexp[i] > 0 -> rexp[i]--
  :: else
  fi
}

active proctype Clock() {
end:
  do
  :: atomic {
      tickHome(0);
      tickHome(1);
      tickHolder(0);
      tickHolder(1);
      if
      :: homeWait > 1 && fastH < D -> homeWait = homeWait - 2; fastH++ /* successor clock fast */
      :: homeWait > 0 -> homeWait--
      :: else
      fi
    }
  od
}

/* A holder sends a new request only when no message of its previous one can
   still arrive. This is what the transport's never-reused request id gives the
   implementation (a grant is matched to the request it answers); modelling it
   this way saves the id in the state vector. Without it a stale grant would be
   started on a later request's clock: unsafe. */
#define IDFREE(i) (empty(grantCh[i]) && !(toHome??[REQ, eval(i), _]))

inline request(i) {
  waiting[i] = true;
  reqRem[i] = T - M; /* the lease clock starts now, when the request is SENT */
  slow[i] = 0;
  if
  :: nfull(toHome) -> toHome!REQ(i, 0)
  :: true
  fi
}

proctype Holder(byte i) {
end:
  do
  /* first lease, or a retry (request or grant lost: the old id is abandoned). Renewal
     before expiry is the same exchange; the model renews only after expiry (fewer states). */
  :: atomic { rem[i] == 0 && unb[i] == 0 && IDFREE(i) -> request(i) }
  :: atomic {
      grantCh[i]?v, s ->
        if
        :: waiting[i] -> lv[i] = v; rem[i] = reqRem[i]; reqRem[i] = 0; waiting[i] = false;
          if :: rem[i] == 0 -> lv[i] = 0; slow[i] = 0 :: else fi
        :: else /* its request was abandoned (revoked meanwhile): ignored */
        fi
    }
  :: atomic {
      revokeCh[i]?e ->
        /* JavaScript: the lease is dropped, requests in flight abandoned */
        reqRem[i] = 0;
        waiting[i] = false; /* a grant already in flight must not install the old version */
#ifdef ACK_BEFORE_UNBIND
        /* broken: acknowledged while the native binding still serves */
        if
        :: nfull(toHome) -> toHome!ACK(i, e)
        :: true
        fi;
        unb[i] = e
#else
        /* the native binding is removed, THEN the revoke is acknowledged: in the
           implementation both happen in one synchronous call before the answer is
           sent, so nothing else interleaves (reads that start before it are
           before the ACK, hence before the invalidation is answered) */
        rem[i] = 0; lv[i] = 0; slow[i] = 0;
        if
        :: nfull(toHome) -> toHome!ACK(i, e)
        :: true
        fi
#endif
    }
#ifdef ACK_BEFORE_UNBIND
  :: atomic {
      unb[i] != 0 ->
        /* the native binding is removed only now: I/O threads read it until here */
        rem[i] = 0; lv[i] = 0; slow[i] = 0;
        unb[i] = 0
    }
#endif
  :: atomic {
      rem[i] > 0 && !reading ->
        assert(lv[i] >= floor); /* (a): a read resolves the name */
        if
        :: i == 0 -> reading = true; rv = lv[i] /* first chunk served from version rv */
        :: else /* holder 1's reads are single-chunk: fewer states */
        fi
    }
  :: atomic {
      i == 0 && reading ->
#ifdef PER_CHUNK_RESOLVE
        if
        :: rem[i] > 0 -> assert(lv[i] == rv) /* (b) broken: the 2nd chunk from what the name means NOW */
        :: else
        fi;
#else
        skip; /* (b) holds by construction: the 2nd chunk is named by rv, the version resolved */
#endif
        reading = false
    }
  od
}

active proctype Home() {
end:
  do
  :: atomic {
      toHome?m, h, a ->
        if
        :: m == REQ -> hexp[h] = T; /* home clock starts at receipt: never before the holder's */
          lossySend2(grantCh[h], hv, 0)
        :: m == ACK && pending && a == revokeId -> rexp[h] = 0
        :: else /* stale ACK of an earlier revocation */
        fi
    }
  :: atomic { !pending -> hv = ov } /* the binding aged out: revalidate (no revocation) */
  :: atomic {
      !pending && nempty(invReq) ->
        invReq?_;
        revokeId++;
        hv = ov; /* re-resolve at the origin; new grants get the new version */
        pending = true;
        h = 0;
        do
        :: h < NH ->
          rexp[h] = hexp[h]; /* revoke EVERY outstanding lease of the name */
          if
          :: rexp[h] > 0 -> lossySend1(revokeCh[h], revokeId)
          :: else
          fi;
          h++
        :: else -> break
        od
    }
  :: atomic { pending && rexp[0] > 0 -> lossySend1(revokeCh[0], revokeId) } /* retransmit */
  :: atomic { pending && rexp[1] > 0 -> lossySend1(revokeCh[1], revokeId) }
  :: atomic {
#ifdef NO_WAIT_ACK
      pending ->
#else
      pending && rexp[0] == 0 && rexp[1] == 0 && homeWait == 0 ->
#endif
        pending = false;
        floor = hv;
        invAns!hv
    }
  :: atomic {
      !crashed ->
        /* H1 dies with its lease table; H2, next in rank, becomes home. Messages to
           H1 are lost; its grants already sent may still arrive. */
        crashed = true;
        do
        :: toHome?_, _, _
        :: empty(toHome) -> break
        od;
        hexp[0] = 0; hexp[1] = 0; rexp[0] = 0; rexp[1] = 0;
        hv = ov; /* H2 resolves fresh at the origin */
#ifndef NO_HOME_WAIT
        homeWait = T + D; /* H2's clock may run fast by D: wait long enough on it */
#endif
        if
        :: pending -> pending = false; invReq!1 /* the invalidator's retry reaches H2 */
        :: else
        fi
    }
  od
}

active proctype Writer() {
end:
  do
  :: atomic { ov < MAXV -> ov++ }
  :: atomic { ninv < MAXINV && !invOut -> ninv++; invOut = true; invReq!1 }
  :: atomic { invAns?_ -> invOut = false }
  od
}

init {
  atomic {
    run Holder(0);
    run Holder(1)
  }
}
