"""What a command leaves behind, shared by the ops tool and the rehearsal: its report and checks, how a failure
is classified, how tasks are counted through a fault, and the timeline picture. Imports nothing of either."""
